package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"gobootc.dev/lib/cli"
	"gobootc.dev/lib/imgref"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/lock"
	"gobootc.dev/lib/record"
)

// fetcher runs bootc-fetch against the new physical root, under the install's lock.
type fetcher struct {
	r      layout.Root
	lock   *lock.Lock
	tmp    string
	sigpol bool
	stdout io.Writer
	stderr io.Writer
}

// fetch stores ref's image in the new root (or with check only resolves it) and returns what
// bootc-fetch reports. The tool reads the host's command line and run directory only to find a
// booted deployment of the root it works on, which a new root does not have: it is given
// neither.
func (f *fetcher) fetch(ctx context.Context, ref imgref.Ref, check bool) (*record.FetchResult, error) {
	resultFile := filepath.Join(f.tmp, "fetch-result.json")
	os.Remove(resultFile)
	args := []string{"--sysroot", f.r.Phys, "--run-dir", f.r.Run, "--cmdline", os.DevNull,
		"--transport", ref.Transport.String(), "--result", resultFile}
	if f.sigpol {
		args = append(args, "--enforce-container-sigpolicy")
	}
	if check {
		args = append(args, "--check")
	}
	args = append(args, ref.Image)
	cmd, err := cli.StepCommand(ctx, "bootc-fetch", args...)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f.stdout, f.stderr
	var checkErr bytes.Buffer
	if check {
		// A check of a new root would only announce an "update"; its error is what matters.
		cmd.Stdout, cmd.Stderr = io.Discard, &checkErr
	}
	if err := cli.RunStep(cmd, f.lock); err != nil {
		var ee *cli.ExitError
		if check && errors.As(err, &ee) {
			return nil, fmt.Errorf("the target image %s cannot be fetched (--skip-fetch-check skips this check): %s",
				ref, bytes.TrimSpace(lastLine(checkErr.Bytes())))
		}
		return nil, err
	}
	res := &record.FetchResult{}
	if err := record.ReadResult("bootc-fetch", resultFile, res); err != nil {
		return nil, err
	}
	if res.ManifestDigest == "" {
		return nil, fmt.Errorf("bootc-fetch reported no manifest digest for %s", ref)
	}
	return res, nil
}

func lastLine(b []byte) []byte {
	b = bytes.TrimRight(b, "\n")
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}
