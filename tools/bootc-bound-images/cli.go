package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gobootc.dev/lib/cli"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/lock"
	"gobootc.dev/lib/mountns"
	"gobootc.dev/lib/pullsecret"
)

// CLI is the command line.
type CLI struct {
	cli.Root
	Sync SyncCmd `cmd:"" help:"Put the bound images of a deployment into bootc's container storage." unsupportedflags:"run-dir,cmdline"`
	GC   GCCmd   `cmd:"" name:"gc" help:"Remove the images that no kept deployment declares from bootc's container storage."`
	List ListCmd `cmd:"" help:"List the host images and the logically bound images." unsupportedflags:"podman,lock-wait"`

	Podman   string        `help:"podman program that serves the API." default:"podman" env:"BOOTC_PODMAN" hidden:""`
	Cmdline  string        `help:"Kernel command line to read the booted deployment from." default:"/proc/cmdline" env:"BOOTC_CMDLINE" hidden:""`
	LockWait time.Duration `help:"How long to wait for another bootc operation to finish." default:"1h" hidden:""`

	// AuthSearch replaces the pull-secret search list (tests).
	AuthSearch []string `kong:"-"`
}

// SyncCmd is `sync`.
type SyncCmd struct {
	Deployment  string `help:"Deployment whose bound images to store." placeholder:"STATEROOT/ID"`
	Root        string `help:"Root filesystem whose bound images to store, instead of a deployment." placeholder:"DIR"`
	FromStorage string `help:"Copy the images from this containers-storage instead of pulling them." placeholder:"DIR"`

	Authfile       string `help:"Pull secret to use instead of the ostree auth.json search." hidden:"" placeholder:"FILE"`
	RegistriesConf string `name:"registries-conf" help:"registries.conf for the pulls instead of the system one." hidden:"" placeholder:"FILE"`
}

// GCCmd is `gc`.
type GCCmd struct {
	DryRun bool `help:"Only say what would be removed."`
}

// ListCmd is `list`.
type ListCmd struct {
	Type   string `help:"Which images: all, logical or host." enum:"all,logical,host" default:"all"`
	Format string `help:"Output format: table or json." enum:"table,json" default:"table"`
	Root   string `help:"Root filesystem whose bound images to list (default: the booted deployment, else /)." placeholder:"DIR"`
}

// Run runs the selected command ("sync", "gc", "list").
func (c *CLI) Run(ctx context.Context, cmd string, out, errOut io.Writer) error {
	if c.Sysroot == "" {
		c.Sysroot = layout.DefaultSysroot
	}
	if c.Podman == "" {
		c.Podman = "podman"
	}
	switch strings.Fields(cmd)[0] {
	case "sync":
		return c.sync(ctx, out, errOut)
	case "gc":
		return c.gc(ctx, out, errOut)
	case "list":
		return c.list(out)
	}
	return fmt.Errorf("unknown command %q", cmd)
}

// writer prepares the physical root for a command that changes bootc's storage: writable for
// this process, bootc state present, the writer lock held (or inherited from the caller).
func (c *CLI) writer(ctx context.Context, op string, errOut io.Writer) (layout.Root, *lock.Lock, error) {
	r := c.Layout()
	if !r.IsDeployed() {
		return r, nil, fmt.Errorf("%s holds no bootc state (%s)", r.Phys, r.Bootc())
	}
	if err := mountns.MakeWritable(r.Phys); err != nil {
		return r, nil, err
	}
	l, err := lock.Acquire(ctx, r.Lock(), lock.Options{
		Operation: op, Wait: c.LockWait,
		Notify: func(msg string) { fmt.Fprintln(errOut, msg) },
	})
	if err != nil {
		return r, nil, err
	}
	if err := os.MkdirAll(r.BoundStorage(), 0o700); err != nil {
		l.Release()
		return r, nil, fmt.Errorf("creating %s: %w", r.BoundStorage(), err)
	}
	return r, l, nil
}

// serviceEnv is the environment of the podman services: this one, without the variables
// through which a user's registry credentials could reach a pull.
func serviceEnv(registriesConf string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "REGISTRY_AUTH_FILE", "DOCKER_CONFIG", "CONTAINERS_REGISTRIES_CONF":
			continue
		}
		env = append(env, kv)
	}
	if registriesConf != "" {
		env = append(env, "CONTAINERS_REGISTRIES_CONF="+registriesConf)
	} else if v := os.Getenv("CONTAINERS_REGISTRIES_CONF"); v != "" {
		env = append(env, "CONTAINERS_REGISTRIES_CONF="+v)
	}
	return env
}

// pullSecret returns the auth file every pull uses: bootc's pull secret, or an empty one made in
// dir so that the pull is anonymous. Without a file, the bindings would send whatever
// credentials the invoking user has for podman or docker.
func (c *CLI) pullSecret(explicit, dir string) (string, error) {
	if p, err := pullsecret.Find(explicit, c.AuthSearch); p != "" || err != nil {
		return p, err
	}
	empty := filepath.Join(dir, "auth.json")
	if err := os.WriteFile(empty, []byte("{}\n"), 0o600); err != nil {
		return "", fmt.Errorf("pull secret: %w", err)
	}
	return empty, nil
}
