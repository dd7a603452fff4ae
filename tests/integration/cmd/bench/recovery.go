package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"gobootc.dev/tests/integration/lifecycle"
)

// defaultE2EArtifacts is where `make e2e` keeps its artifacts unless BOOTC_TEST_ARTIFACTS says.
const defaultE2EArtifacts = "/var/tmp/bootc-e2e-artifacts"

// recovery is figure 6: how the bad updates of the VM lifecycle healed, per boot loader: the
// boots and seconds from `bootc upgrade --apply` until the host was back on the previous
// deployment with status saying why; the target is the tries and one fallback boot. Measuring
// it here would take a VM lifecycle per boot loader (most of an hour under TCG), so the figure
// reads what the last `make e2e` (or `make demo`) wrote, and says where and when.
func (b *bench) recovery() ([]row, error) {
	files, err := filepath.Glob(filepath.Join(b.e2eArtifacts, "*", lifecycle.RecoveryFile))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		progress("figure 6: no */%s under %s: make e2e (or make demo) writes them", lifecycle.RecoveryFile, b.e2eArtifacts)
		return nil, nil
	}
	sort.Strings(files)
	var rows []row
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var rep lifecycle.RecoveryReport
		if err := json.Unmarshal(data, &rep); err != nil {
			return nil, fmt.Errorf("reading %s: %w", f, err)
		}
		fi, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		from := fmt.Sprintf("%s, %s", filepath.Base(filepath.Dir(f)), fi.ModTime().Format("2006-01-02 15:04"))
		for _, rc := range rep.Recoveries {
			name := rep.Bootloader + ", " + rc.Image
			rows = append(rows,
				row{Name: name + ": boots until back", Value: float64(rc.Boots), Unit: "boots", Limit: float64(rc.Target) + 1,
					Note: fmt.Sprintf("%s; target %d: %d tries + the fallback boot (%s)", rc.Failure, rc.Target, rc.Tries, from)},
				row{Name: name + ": upgrade --apply until back", Value: rc.Seconds, Unit: "s",
					Note: "under TCG; until bootc status names the failed update"})
		}
	}
	return rows, nil
}
