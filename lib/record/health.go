package record

import "time"

// Health is the outcome of one boot's health checks, written by bootc-health: in the run
// directory for this boot (layout Root.Health), and kept with the booted deployment's state
// (Root.DeploymentHealth) for the boots after it, a fallback boot among them.
type Health struct {
	Version int `json:"version"`
	// Stateroot and ID name the booted deployment and ManifestDigest its image, so that an
	// image that failed is still known once its deployment is gone; all three are empty on a
	// host not booted through bootc.
	Stateroot      string `json:"stateroot,omitempty"`
	ID             string `json:"id,omitempty"`
	ManifestDigest string `json:"manifestDigest,omitempty"`
	// BootID is the kernel's id of the boot the checks ran in (/proc/sys/kernel/random/boot_id).
	BootID  string  `json:"bootID,omitempty"`
	Verdict Verdict `json:"verdict"`
	// Failed is the path of the required check that made the verdict RED.
	Failed   string        `json:"failed,omitempty"`
	Started  time.Time     `json:"started"`
	Finished time.Time     `json:"finished"`
	Checks   []HealthCheck `json:"checks"`
	// Assessment is what boot counting did with the verdict; absent until that step has run.
	Assessment *HealthAssessment `json:"assessment,omitempty"`
}

// Verdict is a boot's health, in greenboot's words.
type Verdict string

// The verdicts: GREEN when every required check passed, RED when one failed.
const (
	Green Verdict = "GREEN"
	Red   Verdict = "RED"
)

// HealthCheck is the outcome of one check.
type HealthCheck struct {
	// Path is the check's file as the host names it (/etc/greenboot/check/required.d/10_x.sh).
	Path string `json:"path"`
	// Kind is required or wanted: only a required check's failure makes the verdict RED (green
	// and red for hooks). Type is how it ran: script (with bash), executable or units.
	Kind    string       `json:"kind"`
	Type    string       `json:"type"`
	Outcome CheckOutcome `json:"outcome"`
	// ExitStatus is the status a check that ended by itself exited with.
	ExitStatus *int `json:"exitStatus,omitempty"`
	// Signal names the signal that ended a check that did not exit by itself (SIGSEGV).
	Signal string `json:"signal,omitempty"`
	// TimedOutAfter is the timeout a check ran into, after which it was killed ("20m0s").
	TimedOutAfter string `json:"timedOutAfter,omitempty"`
	// Error says why a check failed otherwise: it could not be started, or a unit is not active.
	Error      string `json:"error,omitempty"`
	DurationMS int64  `json:"durationMs"`
	// LastLines are the last lines of a check's output, kept when it did not pass.
	LastLines []string `json:"lastLines,omitempty"`
}

// CheckOutcome is how one check ended.
type CheckOutcome string

// The outcomes of a check.
const (
	CheckPassed   CheckOutcome = "passed"
	CheckFailed   CheckOutcome = "failed"
	CheckTimedOut CheckOutcome = "timed-out"
	// CheckSkipped: not run, because a required check failed before it.
	CheckSkipped CheckOutcome = "skipped"
	// CheckDisabled: not run, because the configuration leaves it out (DISABLED_HEALTHCHECKS).
	CheckDisabled CheckOutcome = "disabled"
)

// HealthAssessment is what boot counting did with a verdict: blessed the boot, or marked it bad
// and how many tries the deployment has left.
type HealthAssessment struct {
	Action    string    `json:"action"`
	TriesLeft *int      `json:"triesLeft,omitempty"`
	Time      time.Time `json:"time"`
}

func (h *Health) formatVersion() int { return h.Version }

// Failure is the required check that made the verdict RED, nil for a GREEN one.
func (h *Health) Failure() *HealthCheck {
	if h.Failed == "" {
		return nil
	}
	for i := range h.Checks {
		if c := &h.Checks[i]; c.Path == h.Failed && c.Kind == "required" {
			return c
		}
	}
	return nil
}

// ReadHealth returns the health record at path (Root.Health or Root.DeploymentHealth), or
// ErrNotFound.
func ReadHealth(path string) (*Health, error) {
	h := &Health{}
	if err := Read(path, h); err != nil {
		return nil, err
	}
	return h, nil
}
