package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"gobootc.dev/lib/bootloader"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
)

// sysroot is a physical root and its run directory in a scratch directory of its own.
type sysroot struct {
	dir  string
	root layout.Root
}

func (b *bench) newSysroot() (sysroot, error) {
	dir, err := os.MkdirTemp(b.work, "sysroot-")
	if err != nil {
		return sysroot{}, err
	}
	return sysroot{dir: dir, root: layout.New(filepath.Join(dir, "phys"), filepath.Join(dir, "run"))}, nil
}

// fetchResult is the part of bootc-fetch's --result the figures use.
type fetchResult struct {
	ManifestDigest string `json:"manifestDigest"`
	BytesFetched   int64  `json:"bytesFetched"`
	LayersFetched  int    `json:"layersFetched"`
	LayersReused   int    `json:"layersReused"`
}

// fetch runs bootc-fetch for ref into s, with conf as registries.conf.
func (b *bench) fetch(s sysroot, conf, ref string) (fetchResult, runStats, error) {
	var res fetchResult
	out := filepath.Join(s.dir, "fetch-result.json")
	st, err := command(nil, filepath.Join(b.bin, "bootc-fetch"),
		"--sysroot", s.root.Phys, "--run-dir", s.root.Run, "--registries-conf", conf, "--cmdline", "/dev/null",
		"--quiet", "--transport", "registry", "--result", out, ref)
	if err != nil {
		return res, st, err
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return res, st, fmt.Errorf("reading bootc-fetch's result: %w", err)
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return res, st, fmt.Errorf("decoding bootc-fetch's result: %w", err)
	}
	return res, st, nil
}

// stage runs bootc-stage --no-arm for a fetched manifest digest.
func (b *bench) stage(s sysroot, digest string) (runStats, error) {
	return command(nil, filepath.Join(b.bin, "bootc-stage"),
		"--sysroot", s.root.Phys, "--run-dir", s.root.Run, "--cmdline", "/dev/null",
		"--reboot-required-file", filepath.Join(s.dir, "reboot-required"),
		"--image", digest, "--no-arm", "--result", filepath.Join(s.dir, "stage-result.json"))
}

// fetchStage fetches and stages ref, returning both results.
func (b *bench) fetchStage(s sysroot, conf, ref string) (fetchResult, runStats, runStats, error) {
	res, fst, err := b.fetch(s, conf, ref)
	if err != nil {
		return res, fst, runStats{}, err
	}
	sst, err := b.stage(s, res.ManifestDigest)
	return res, fst, sst, err
}

// stagedDeployment reads the staged deployment's record.
func stagedDeployment(s sysroot) (*record.Deployment, error) {
	staged, err := record.ReadStaged(s.root)
	if err != nil {
		return nil, err
	}
	return record.ReadDeployment(s.root, staged.Stateroot, staged.ID)
}

// writableEtc gives a deployment the writable /etc that finalize makes at shutdown; for a first
// deployment that is a copy of the image's.
func writableEtc(s sysroot, d *record.Deployment) error {
	etc := s.root.Etc(d.Stateroot, d.ID)
	if err := os.MkdirAll(filepath.Dir(etc), 0o755); err != nil {
		return err
	}
	if out, err := exec.Command("cp", "-a", filepath.Join(s.root.Deployment(d.Stateroot, d.ID), "usr", "etc"), etc).CombinedOutput(); err != nil {
		return fmt.Errorf("copying /etc of deployment %s: %v: %s", d.ID, err, out)
	}
	return nil
}

// boot does what finalize, the boot loader and the initramfs do for a first deployment: the
// staged deployment gets its writable /etc and the only boot entry, and becomes the booted one.
func boot(s sysroot) error {
	d, err := stagedDeployment(s)
	if err != nil {
		return err
	}
	if err := writableEtc(s, d); err != nil {
		return err
	}
	if err := bootloader.WriteSet(s.root.Boot, []bootloader.Deployment{bootloader.FromRecord(d)}, bootloader.Options{NoFreeze: true}); err != nil {
		return err
	}
	if err := record.Remove(s.root.Staged()); err != nil {
		return err
	}
	return record.Write(s.root.Booted(), &record.Booted{Version: record.FormatVersion, Stateroot: d.Stateroot, ID: d.ID})
}

// install fetches, stages and boots ref on a new sysroot.
func (b *bench) install(ref string) (sysroot, error) {
	s, err := b.newSysroot()
	if err != nil {
		return s, err
	}
	if _, _, _, err := b.fetchStage(s, b.ims.conf, b.ims.ref(ref)); err != nil {
		return s, err
	}
	return s, boot(s)
}

// deployments counts the deployment records of the default stateroot.
func deployments(s sysroot) int {
	recs, _ := filepath.Glob(filepath.Join(s.root.Deploy(layout.DefaultStateroot), "*.json"))
	return len(recs)
}

// podmanStore is a private, initially empty podman image store.
type podmanStore struct {
	root    string // graph root, on the sysroot filesystem
	runroot string // podman refuses a run root longer than 50 characters: it goes under /run
}

func (b *bench) newPodmanStore() (podmanStore, error) {
	root, err := os.MkdirTemp(b.work, "podman-")
	if err != nil {
		return podmanStore{}, err
	}
	runroot, err := os.MkdirTemp("/run", "bench-podman-")
	return podmanStore{root: root, runroot: runroot}, err
}

// pull pulls ref from the benchmark's registry into the store.
func (b *bench) pull(p podmanStore, ref string) (runStats, error) {
	return command([]string{"CONTAINERS_REGISTRIES_CONF=" + b.ims.conf}, "podman",
		"--root", p.root, "--runroot", p.runroot, "--runtime", "runc", "--storage-driver", "overlay",
		"--events-backend", "file", "pull", "--quiet", ref)
}

func (p podmanStore) remove() error {
	return errors.Join(removeTree(p.root), removeTree(p.runroot))
}

// removeTree removes a scratch directory, first detaching anything mounted below it (the
// overlay driver makes its home a private mount).
func removeTree(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			points = append(points, fields[4])
		}
	}
	f.Close()
	// Deepest first.
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil {
			return fmt.Errorf("unmounting %s: %w", p, err)
		}
	}
	return os.RemoveAll(dir)
}
