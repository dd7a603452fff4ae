package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"gobootc.dev/lib/etcmerge"
	"gobootc.dev/lib/fetchtest"
)

// coldFetch is figure 1: an image fetched into an empty place, by bootc (fetch and stage into
// an empty sysroot), podman (pull into an empty store) and skopeo (copy to an OCI directory).
// The runs take turns so that a drift of the machine affects every tool alike.
func (b *bench) coldFetch() ([]row, error) {
	ref := b.ims.ref(refBase)
	var bootc, fetch, stage, podman, skopeo []time.Duration
	for i := 0; i < b.runs; i++ {
		s, err := b.newSysroot()
		if err != nil {
			return nil, err
		}
		flush()
		_, fst, sst, err := b.fetchStage(s, b.ims.conf, ref)
		if err != nil {
			return nil, err
		}
		b.coldFetchRuns = append(b.coldFetchRuns, fst)
		b.coldStageRuns = append(b.coldStageRuns, sst)
		bootc = append(bootc, fst.wall+sst.wall)
		fetch, stage = append(fetch, fst.wall), append(stage, sst.wall)
		if err := removeTree(s.dir); err != nil {
			return nil, err
		}

		ps, err := b.newPodmanStore()
		if err != nil {
			return nil, err
		}
		flush()
		pst, err := b.pull(ps, ref)
		if err != nil {
			return nil, err
		}
		b.podmanPullRuns = append(b.podmanPullRuns, pst)
		podman = append(podman, pst.wall)
		if err := ps.remove(); err != nil {
			return nil, err
		}

		dir, err := os.MkdirTemp(b.work, "skopeo-")
		if err != nil {
			return nil, err
		}
		flush()
		kst, err := command(nil, "skopeo", "copy", "--quiet", "--src-tls-verify=false",
			"docker://"+ref, "oci:"+filepath.Join(dir, "oci")+":bench")
		if err != nil {
			return nil, err
		}
		skopeo = append(skopeo, kst.wall)
		if err := removeTree(dir); err != nil {
			return nil, err
		}
	}
	mb, mp, mk := median(bootc), median(podman), median(skopeo)
	return []row{
		{Name: "bootc-fetch + bootc-stage", Value: secs(mb), Unit: "s", Against: "podman pull", Ratio: ratio(mb, mp), Target: 1.0,
			Note: fmt.Sprintf("%s; fetch %.2f s + stage %.2f s; image %s compressed", runsText(bootc), secs(median(fetch)), secs(median(stage)), bytesText(compressedSize(b.ims.base)))},
		{Name: "bootc-fetch + bootc-stage", Value: secs(mb), Unit: "s", Against: "skopeo copy", Ratio: ratio(mb, mk)},
		{Name: "podman pull (empty overlay store)", Value: secs(mp), Unit: "s", Note: runsText(podman)},
		{Name: "skopeo copy (to an OCI directory, no unpacking)", Value: secs(mk), Unit: "s", Note: runsText(skopeo)},
	}, nil
}

// update is figure 2: the booted image's successor differs in one small layer (/etc). What
// crosses the wire is counted twice: by bootc-fetch itself and by a proxy in front of the
// registry (which also sees the manifest and config).
func (b *bench) update() ([]row, error) {
	s, err := b.install(refBase)
	if err != nil {
		return nil, err
	}
	defer removeTree(s.dir)
	proxy := fetchtest.StartProxy(b.h, b.ims.reg.Host)
	conf := filepath.Join(s.dir, "registries.conf")
	if err := fetchtest.WriteRegistriesConf(conf, b.ims.reg.Host, proxy.Host); err != nil {
		return nil, err
	}
	flush()
	res, fst, sst, err := b.fetchStage(s, conf, proxy.Ref(refUpdate))
	if err != nil {
		return nil, err
	}
	if res.LayersFetched != 1 {
		return nil, fmt.Errorf("the update fetched %d layers, want 1 (reused %d)", res.LayersFetched, res.LayersReused)
	}
	changed := b.ims.update.LayerSizes[b.ims.changed]
	served := proxy.BlobBytes()
	t := fst.wall + sst.wall
	rows := []row{
		{Name: "bytes fetched (bootc-fetch result)", Value: float64(res.BytesFetched), Unit: "B", Against: "changed layer's compressed size",
			Ratio: float64(res.BytesFetched) / float64(changed), Target: 1.02,
			Note: fmt.Sprintf("changed layer %s; %d layers fetched, %d reused", bytesText(changed), res.LayersFetched, res.LayersReused)},
		{Name: "blob bytes served (proxy, with config)", Value: float64(served), Unit: "B", Against: "changed layer's compressed size",
			Ratio: float64(served) / float64(changed)},
		{Name: "update fetch + stage", Value: secs(t), Unit: "s",
			Note: fmt.Sprintf("fetch %.2f s (through the proxy) + stage %.2f s", secs(fst.wall), secs(sst.wall))},
	}
	if len(b.coldFetchRuns) > 0 {
		var cold []time.Duration
		for i := range b.coldFetchRuns {
			cold = append(cold, b.coldFetchRuns[i].wall+b.coldStageRuns[i].wall)
		}
		rows[2].Against, rows[2].Ratio = "cold fetch + stage", ratio(t, median(cold))
	}
	return rows, nil
}

// disk is figure 3: two deployments of images rebuilt from the same sources (every layer
// digest differs, 5% of the files differ) against one, and podman's store holding both images.
func (b *bench) disk() ([]row, error) {
	s, err := b.install(refBase)
	if err != nil {
		return nil, err
	}
	defer removeTree(s.dir)
	one, err := diskUsage(s.root.Phys)
	if err != nil {
		return nil, err
	}
	if _, _, _, err := b.fetchStage(s, b.ims.conf, b.ims.ref(refRebuilt)); err != nil {
		return nil, err
	}
	if n := deployments(s); n != 2 {
		return nil, fmt.Errorf("%d deployments after staging the rebuilt image, want 2", n)
	}
	// Like the first, the second gets the /etc it would have once finalized.
	d, err := stagedDeployment(s)
	if err != nil {
		return nil, err
	}
	if err := writableEtc(s, d); err != nil {
		return nil, err
	}
	two, err := diskUsage(s.root.Phys)
	if err != nil {
		return nil, err
	}

	ps, err := b.newPodmanStore()
	if err != nil {
		return nil, err
	}
	defer ps.remove()
	if _, err := b.pull(ps, b.ims.ref(refBase)); err != nil {
		return nil, err
	}
	pOne, err := diskUsage(ps.root)
	if err != nil {
		return nil, err
	}
	if _, err := b.pull(ps, b.ims.ref(refRebuilt)); err != nil {
		return nil, err
	}
	pTwo, err := diskUsage(ps.root)
	if err != nil {
		return nil, err
	}
	note := fmt.Sprintf("rebuilt: all %d layer digests differ, %d of %d files changed",
		len(b.ims.rebuilt.LayerDigests), b.ims.rebuiltFiles, b.ims.files)
	return []row{
		{Name: "sysroot, one deployment", Value: float64(one), Unit: "B", Note: "du -s of the physical root: store, deployment, its /etc, /boot"},
		{Name: "sysroot, two deployments", Value: float64(two), Unit: "B", Against: "one deployment", Ratio: float64(two) / float64(one), Target: 1.1, Note: note},
		{Name: "podman store, one image", Value: float64(pOne), Unit: "B", Against: "bootc, one deployment", Ratio: float64(pOne) / float64(one)},
		{Name: "podman store, both images", Value: float64(pTwo), Unit: "B", Against: "podman, one image", Ratio: float64(pTwo) / float64(pOne)},
		{Name: "sysroot, two deployments", Value: float64(two), Unit: "B", Against: "podman store, both images", Ratio: float64(two) / float64(pTwo)},
	}, nil
}

// memory is figure 4: bootc-fetch's peak resident memory on the cold pull and on the same
// image with a large incompressible layer added. Layers stream through the store, so the
// peak should not follow the image's size.
func (b *bench) memory() ([]row, error) {
	if len(b.coldFetchRuns) == 0 {
		s, err := b.newSysroot()
		if err != nil {
			return nil, err
		}
		_, st, err := b.fetch(s, b.ims.conf, b.ims.ref(refBase))
		removeTree(s.dir)
		if err != nil {
			return nil, err
		}
		b.coldFetchRuns = append(b.coldFetchRuns, st)
	}
	peak := func(rs []runStats) int64 {
		var m int64
		for _, r := range rs {
			m = max(m, r.maxRSS)
		}
		return m
	}
	cold := peak(b.coldFetchRuns)
	s, err := b.newSysroot()
	if err != nil {
		return nil, err
	}
	defer removeTree(s.dir)
	_, st, err := b.fetch(s, b.ims.conf, b.ims.ref(refLarge))
	if err != nil {
		return nil, err
	}
	rows := []row{
		{Name: "bootc-fetch peak RSS, cold pull", Value: float64(cold), Unit: "B",
			Note: fmt.Sprintf("image %s compressed", bytesText(compressedSize(b.ims.base)))},
		{Name: "bootc-fetch peak RSS, larger image", Value: float64(st.maxRSS), Unit: "B", Against: "cold pull",
			Ratio: float64(st.maxRSS) / float64(cold),
			Note:  fmt.Sprintf("image %s compressed (%.1f× the cold image)", bytesText(compressedSize(b.ims.large)), float64(compressedSize(b.ims.large))/float64(compressedSize(b.ims.base)))},
	}
	if len(b.coldStageRuns) > 0 {
		rows = append(rows, row{Name: "bootc-stage peak RSS, cold pull", Value: float64(peak(b.coldStageRuns)), Unit: "B"})
	}
	if len(b.podmanPullRuns) > 0 {
		p := peak(b.podmanPullRuns)
		rows = append(rows, row{Name: "podman pull peak RSS, cold pull", Value: float64(p), Unit: "B"})
		rows[0].Against, rows[0].Ratio = "podman pull", float64(cold)/float64(p)
	}
	return rows, nil
}

// etcMerge is figure 5: the three-way /etc merge on a copy of a real /etc with 50 local and 60
// image changes, on the sysroot's filesystem and on tmpfs. Merge ends with a syncfs of the
// whole filesystem. For scale: the planning step alone (reading the three trees), a bare
// syncfs, and `cp -a` of the live tree, which creates about as many entries as the merge does.
func (b *bench) etcMerge() ([]row, error) {
	const runs = 5
	type timing struct {
		merge, mergeMin, plan, syncfs, cp time.Duration
		tr                                *etcTrees
	}
	time1 := func(base string) (timing, error) {
		var t timing
		dir, err := os.MkdirTemp(base, "etcmerge-")
		if err != nil {
			return t, err
		}
		defer removeTree(dir)
		if t.tr, err = makeEtcTrees(b.etc, dir); err != nil {
			return t, err
		}
		var merges, plans, syncs, cps []time.Duration
		for i := 0; i < runs; i++ {
			flush()
			d, err := syncfs(dir)
			if err != nil {
				return t, err
			}
			syncs = append(syncs, d)
			flush()
			start := time.Now()
			plan, err := etcmerge.Merge(t.tr.Pristine, t.tr.Current, t.tr.New, filepath.Join(dir, fmt.Sprintf("out%d", i)))
			merges = append(merges, time.Since(start))
			if err != nil {
				return t, fmt.Errorf("merging: %w", err)
			}
			t.tr.actions = len(plan.Actions)
			start = time.Now()
			if _, err := etcmerge.Plan(t.tr.Pristine, t.tr.Current, t.tr.New); err != nil {
				return t, fmt.Errorf("planning: %w", err)
			}
			plans = append(plans, time.Since(start))
			flush()
			start = time.Now()
			if out, err := exec.Command("cp", "-a", t.tr.Current, filepath.Join(dir, fmt.Sprintf("cp%d", i))).CombinedOutput(); err != nil {
				return t, fmt.Errorf("cp -a %s: %v: %s", t.tr.Current, err, out)
			}
			cps = append(cps, time.Since(start))
		}
		t.merge, t.mergeMin, t.plan, t.syncfs = median(merges), slices.Min(merges), median(plans), median(syncs)
		t.cp = median(cps)
		return t, nil
	}
	disk, err := time1(b.work)
	if err != nil {
		return nil, err
	}
	shm, err := time1("/dev/shm")
	if err != nil {
		return nil, err
	}
	tr := disk.tr
	return []row{
		{Name: "etcmerge.Merge on " + fsType(b.work), Value: ms(disk.merge), Unit: "ms", Limit: 100, Against: "cp -a of the live /etc", Ratio: ratio(disk.merge, disk.cp),
			Note: fmt.Sprintf("median of %d (min %.1f ms); %s: %d entries, %d local and %d image changes, %d actions",
				runs, ms(disk.mergeMin), b.etc, tr.Entries, tr.Local, tr.Image, tr.actions)},
		{Name: "etcmerge.Merge on " + fsType(b.work), Value: ms(disk.merge), Unit: "ms", Against: "the same on tmpfs", Ratio: ratio(disk.merge, shm.merge)},
		{Name: "cp -a of the live /etc on " + fsType(b.work), Value: ms(disk.cp), Unit: "ms", Note: fmt.Sprintf("median of %d: what creating this many entries costs here", runs)},
		{Name: "etcmerge.Plan alone on " + fsType(b.work), Value: ms(disk.plan), Unit: "ms", Note: "reading and comparing the three trees, warm cache"},
		{Name: "syncfs alone on " + fsType(b.work), Value: ms(disk.syncfs), Unit: "ms", Note: "baseline: a sync right after sync(2), nothing of ours dirty"},
		{Name: "etcmerge.Merge on " + fsType("/dev/shm"), Value: ms(shm.merge), Unit: "ms", Against: "cp -a of the live /etc", Ratio: ratio(shm.merge, shm.cp),
			Note: fmt.Sprintf("median of %d (min %.1f ms)", runs, ms(shm.mergeMin))},
		{Name: "cp -a of the live /etc on " + fsType("/dev/shm"), Value: ms(shm.cp), Unit: "ms", Note: fmt.Sprintf("median of %d", runs)},
	}, nil
}

// syncfs times one syncfs(2) of the filesystem holding dir.
func syncfs(dir string) (time.Duration, error) {
	f, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	start := time.Now()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return 0, fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return time.Since(start), nil
}

// runsText names the statistic and lists the runs, for judging the noise.
func runsText(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%.2f", secs(d))
	}
	return fmt.Sprintf("median of %d (%s s)", len(ds), strings.Join(parts, ", "))
}

func secs(d time.Duration) float64 { return d.Seconds() }
func ms(d time.Duration) float64   { return float64(d) / float64(time.Millisecond) }

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
