// Package host defines the Host document (org.containers.bootc/v1, kind BootcHost): the status and
// spec API that management agents read from `bootc status` and write with `bootc edit`.
package host

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// APIVersion and Kind identify the document; older documents (v1alpha1) are accepted on input.
const (
	APIVersion = "org.containers.bootc/v1"
	Kind       = "BootcHost"
)

// BootOrder is spec.bootOrder: which deployment boots next.
type BootOrder string

// Boot orders accepted in spec.bootOrder.
const (
	BootOrderDefault  BootOrder = "default"
	BootOrderRollback BootOrder = "rollback"
)

// Host is the whole document. Field order is the YAML output order.
type Host struct {
	APIVersion string     `json:"apiVersion" yaml:"apiVersion"`
	Kind       string     `json:"kind" yaml:"kind"`
	Metadata   ObjectMeta `json:"metadata" yaml:"metadata"`
	Spec       HostSpec   `json:"spec" yaml:"spec"`
	Status     HostStatus `json:"status" yaml:"status"`
}

// ObjectMeta follows the Kubernetes object metadata subset the schema allows.
type ObjectMeta struct {
	Name        *string           `json:"name" yaml:"name"`
	Namespace   *string           `json:"namespace,omitempty" yaml:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty" yaml:"annotations,omitempty"`
}

// HostSpec is the desired state: the image to track and which deployment boots next.
type HostSpec struct {
	Image     *ImageReference `json:"image" yaml:"image"`
	BootOrder BootOrder       `json:"bootOrder" yaml:"bootOrder"`
}

// HostStatus is the observed state.
type HostStatus struct {
	Staged           *BootEntry         `json:"staged" yaml:"staged"`
	Booted           *BootEntry         `json:"booted" yaml:"booted"`
	Rollback         *BootEntry         `json:"rollback" yaml:"rollback"`
	OtherDeployments []BootEntry        `json:"otherDeployments,omitempty" yaml:"otherDeployments,omitempty"`
	RollbackQueued   bool               `json:"rollbackQueued" yaml:"rollbackQueued"`
	Type             *string            `json:"type" yaml:"type"`
	UsrOverlay       *FilesystemOverlay `json:"usrOverlay" yaml:"usrOverlay"`
	ReadOnly         bool               `json:"readOnly" yaml:"readOnly"`
	// Health and FailedUpdates are bootc's additions to upstream's document (its schema allows
	// properties it does not name); both are left out when there is nothing to say.
	Health        *BootHealth    `json:"health,omitempty" yaml:"health,omitempty"`
	FailedUpdates []FailedUpdate `json:"failedUpdates,omitempty" yaml:"failedUpdates,omitempty"`
}

// BootHealth is the verdict of this boot's health checks.
type BootHealth struct {
	// Verdict is GREEN or RED, in greenboot's words.
	Verdict string `json:"verdict" yaml:"verdict"`
	// FailedCheck is the required check that made the verdict RED, Reason how it ended (exit
	// code '1', timed out) and LastLines the last lines of its output.
	FailedCheck string   `json:"failedCheck,omitempty" yaml:"failedCheck,omitempty"`
	Reason      string   `json:"reason,omitempty" yaml:"reason,omitempty"`
	LastLines   []string `json:"lastLines,omitempty" yaml:"lastLines,omitempty"`
	// Time is when the checks finished.
	Time time.Time `json:"time" yaml:"time"`
	// Assessment is what boot counting did with the verdict: blessed, reboot (on trial, to try
	// again or fall back) or stay-up (a reboot would not help); absent until decided.
	Assessment string `json:"assessment,omitempty" yaml:"assessment,omitempty"`
}

// The verdicts of BootHealth.
const (
	HealthGreen = "GREEN"
	HealthRed   = "RED"
)

// FailedUpdate is an image whose deployment failed to boot on this host: the boot loader fell
// back from it. Updates do not stage it again unless asked to (--allow-failed).
type FailedUpdate struct {
	Digest string `json:"digest" yaml:"digest"`
	Image  string `json:"image,omitempty" yaml:"image,omitempty"`
	// Deployment is the deployment that failed, "<stateroot>/<id>"; it may be gone since.
	Deployment string    `json:"deployment" yaml:"deployment"`
	Time       time.Time `json:"time" yaml:"time"`
	// Reason says why in one line; Check is the required check that failed and LastLines its
	// last output, when a check ran at all.
	Reason    string   `json:"reason" yaml:"reason"`
	Check     string   `json:"check,omitempty" yaml:"check,omitempty"`
	LastLines []string `json:"lastLines,omitempty" yaml:"lastLines,omitempty"`
	// Tries is how many boots the deployment was given.
	Tries int `json:"tries,omitempty" yaml:"tries,omitempty"`
}

// HostTypeBootc is status.type for a host deployed by bootc.
const HostTypeBootc = "bootcHost"

// BootEntry is one deployment as the boot loader sees it.
type BootEntry struct {
	Image             *ImageStatus       `json:"image" yaml:"image"`
	CachedUpdate      *ImageStatus       `json:"cachedUpdate" yaml:"cachedUpdate"`
	Incompatible      bool               `json:"incompatible" yaml:"incompatible"`
	Pinned            bool               `json:"pinned" yaml:"pinned"`
	SoftRebootCapable bool               `json:"softRebootCapable" yaml:"softRebootCapable"`
	DownloadOnly      bool               `json:"downloadOnly" yaml:"downloadOnly"`
	Store             *string            `json:"store" yaml:"store"`
	Ostree            *BootEntryOstree   `json:"ostree" yaml:"ostree"`
	Composefs         *BootEntryComposef `json:"composefs" yaml:"composefs"`
	// BootCount is bootc's addition: the boot loader's counter of an entry on trial or out of
	// tries; absent for an entry that is neither (blessed, or never counted).
	BootCount *BootCount `json:"bootCount,omitempty" yaml:"bootCount,omitempty"`
}

// BootCount is where an entry stands in boot counting.
type BootCount struct {
	State BootCountState `json:"state" yaml:"state"`
	// TriesLeft is how many more boots the entry gets after this one should it fail: 0 on
	// trial means the boot running now is its last try.
	TriesLeft int `json:"triesLeft" yaml:"triesLeft"`
}

// BootCountState is an entry's state in boot counting.
type BootCountState string

// Boot counting states: on trial (not yet known good), or bad (out of tries: the boot loader
// boots another entry).
const (
	BootCountTrial BootCountState = "trial"
	BootCountBad   BootCountState = "bad"
)

// BootEntryOstree is only present in documents describing ostree-backed hosts; this
// implementation reads it (fixtures, edit input) but never fills it.
type BootEntryOstree struct {
	Stateroot    string `json:"stateroot" yaml:"stateroot"`
	Checksum     string `json:"checksum" yaml:"checksum"`
	DeploySerial uint32 `json:"deploySerial" yaml:"deploySerial"`
}

// BootEntryComposef describes a composefs-backed entry (read, never filled here).
type BootEntryComposef struct {
	Verity               string  `json:"verity" yaml:"verity"`
	BootType             string  `json:"bootType" yaml:"bootType"`
	Bootloader           string  `json:"bootloader" yaml:"bootloader"`
	BootDigest           *string `json:"bootDigest" yaml:"bootDigest"`
	MissingVerityAllowed bool    `json:"missingVerityAllowed" yaml:"missingVerityAllowed"`
}

// ImageStatus is what was fetched: reference, digest and the image's own metadata.
type ImageStatus struct {
	Image        ImageReference `json:"image" yaml:"image"`
	Version      *string        `json:"version" yaml:"version"`
	Timestamp    *time.Time     `json:"timestamp" yaml:"timestamp"`
	ImageDigest  string         `json:"imageDigest" yaml:"imageDigest"`
	Architecture string         `json:"architecture" yaml:"architecture"`
}

// ImageReference is an image with its transport and signature verification mode.
type ImageReference struct {
	Image     string          `json:"image" yaml:"image"`
	Transport string          `json:"transport" yaml:"transport"`
	Signature *ImageSignature `json:"signature,omitempty" yaml:"signature,omitempty"`
}

// TransportRegistry is the default transport; status shows its images without a prefix.
const TransportRegistry = "registry"

// FilesystemOverlay is the state of a /usr overlay.
type FilesystemOverlay struct {
	AccessMode  AccessMode  `json:"accessMode" yaml:"accessMode"`
	Persistence Persistence `json:"persistence" yaml:"persistence"`
}

// AccessMode says whether an overlay can be written.
type AccessMode string

// Persistence says whether an overlay outlives the boot.
type Persistence string

// Overlay access modes and persistence values.
const (
	AccessReadOnly        AccessMode  = "readOnly"
	AccessReadWrite       AccessMode  = "readWrite"
	PersistenceTransient  Persistence = "transient"
	PersistencePersistent Persistence = "persistent"
)

// SignatureMode is how an image's signature is checked.
type SignatureMode string

// Signature modes. An absent signature means the default, unverified mode.
const (
	SignatureContainerPolicy SignatureMode = "containerPolicy"
	SignatureInsecure        SignatureMode = "insecure"
)

// ImageSignature is "containerPolicy", "insecure", or an ostree remote name. JSON spells the
// remote as {"ostreeRemote": NAME}, YAML as the tag form !ostreeRemote NAME.
type ImageSignature struct {
	Mode         SignatureMode // SignatureContainerPolicy, SignatureInsecure, or "" with OstreeRemote set
	OstreeRemote string
}

// MarshalJSON writes the schema's oneOf form.
func (s ImageSignature) MarshalJSON() ([]byte, error) {
	if s.Mode == "" {
		return json.Marshal(map[string]string{"ostreeRemote": s.OstreeRemote})
	}
	return json.Marshal(s.Mode)
}

// UnmarshalJSON accepts the schema's oneOf form.
func (s *ImageSignature) UnmarshalJSON(b []byte) error {
	var mode string
	if err := json.Unmarshal(b, &mode); err == nil {
		return s.setMode(mode)
	}
	var remote struct {
		OstreeRemote *string `json:"ostreeRemote"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&remote); err != nil || remote.OstreeRemote == nil {
		return fmt.Errorf("parsing image signature %s: want \"containerPolicy\", \"insecure\" or {\"ostreeRemote\": NAME}", b)
	}
	*s = ImageSignature{OstreeRemote: *remote.OstreeRemote}
	return nil
}

func (s *ImageSignature) setMode(mode string) error {
	switch m := SignatureMode(mode); m {
	case SignatureContainerPolicy, SignatureInsecure:
		*s = ImageSignature{Mode: m}
		return nil
	}
	return fmt.Errorf("parsing image signature %q: want containerPolicy, insecure or an ostree remote", mode)
}

// MarshalYAML writes the tag form for remotes, as upstream's YAML does.
func (s ImageSignature) MarshalYAML() (any, error) {
	if s.Mode == "" {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!ostreeRemote", Value: s.OstreeRemote, Style: yaml.DoubleQuotedStyle}, nil
	}
	return s.Mode, nil
}

// UnmarshalYAML accepts the tag form, a plain mode string, or the JSON-like mapping.
func (s *ImageSignature) UnmarshalYAML(n *yaml.Node) error {
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!ostreeRemote":
		*s = ImageSignature{OstreeRemote: n.Value}
		return nil
	case n.Kind == yaml.ScalarNode:
		return s.setMode(n.Value)
	case n.Kind == yaml.MappingNode:
		var m map[string]string
		if err := n.Decode(&m); err != nil || len(m) != 1 || m["ostreeRemote"] == "" {
			return fmt.Errorf("parsing image signature at line %d: want {ostreeRemote: NAME}", n.Line)
		}
		*s = ImageSignature{OstreeRemote: m["ostreeRemote"]}
		return nil
	}
	return fmt.Errorf("parsing image signature at line %d: unexpected YAML node", n.Line)
}

// New returns the empty document: what a host not deployed by bootc reports.
func New() *Host {
	name := "host"
	return &Host{
		APIVersion: APIVersion,
		Kind:       Kind,
		Metadata:   ObjectMeta{Name: &name},
		Spec:       HostSpec{BootOrder: BootOrderDefault},
	}
}

// MarshalCanonicalJSON renders the document as compact JSON with object keys sorted, the form
// upstream emits, so outputs can be compared byte for byte.
func (h *Host) MarshalCanonicalJSON() ([]byte, error) {
	raw, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encoding host document: %w", err)
	}
	// Round-trip through generic values: encoding/json sorts map keys.
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("encoding host document: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding host document: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// MarshalYAMLDoc renders the document as YAML in field order.
func (h *Host) MarshalYAMLDoc() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(h); err != nil {
		return nil, fmt.Errorf("encoding host document as YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding host document as YAML: %w", err)
	}
	return buf.Bytes(), nil
}

// Parse reads a Host document in JSON or YAML (JSON is YAML). Unknown fields are ignored so older
// documents (v1alpha1, isContainer) still parse; the apiVersion and kind must be bootc's.
func Parse(data []byte) (*Host, error) {
	h := New()
	h.APIVersion, h.Kind = "", ""
	if err := yaml.Unmarshal(data, h); err != nil {
		// yaml.v3 puts each type error on a line of its own and may quote a value holding
		// a line break; the user reads this as the one line `bootc edit` fails with.
		return nil, fmt.Errorf("parsing host document: %s", strings.Join(strings.Fields(err.Error()), " "))
	}
	switch h.APIVersion {
	case APIVersion, "org.containers.bootc/v1alpha1":
	default:
		return nil, fmt.Errorf("parsing host document: unsupported apiVersion %q (want %s)", h.APIVersion, APIVersion)
	}
	if h.Kind != Kind {
		return nil, fmt.Errorf("parsing host document: unsupported kind %q (want %s)", h.Kind, Kind)
	}
	switch h.Spec.BootOrder {
	case "":
		h.Spec.BootOrder = BootOrderDefault
	case BootOrderDefault, BootOrderRollback:
	default:
		return nil, fmt.Errorf("parsing host document: spec.bootOrder %q is not default or rollback", h.Spec.BootOrder)
	}
	return h, nil
}
