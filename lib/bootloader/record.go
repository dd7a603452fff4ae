package bootloader

import (
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
)

// FromRecord is the boot entry of a deployment: its kernel and initramfs in the boot digest's
// directory, its kernel arguments, and a title naming the image version.
func FromRecord(d *record.Deployment) Deployment {
	dir := layout.BootFilesPath(d.BootDigest)
	title := d.Image.Ref.Image
	if d.Image.Version != "" {
		title += " " + d.Image.Version
	}
	return Deployment{
		Stateroot: d.Stateroot,
		ID:        d.ID,
		Title:     title + " (" + d.Stateroot + "/" + d.ID + ")",
		Kernel:    dir + "/" + layout.Vmlinuz,
		Initrd:    dir + "/" + layout.Initramfs,
		Kargs:     d.Kargs,
	}
}

// FromRecords is FromRecord for each deployment, in order: an entry set.
func FromRecords(ds []*record.Deployment) []Deployment {
	set := make([]Deployment, len(ds))
	for i, d := range ds {
		set[i] = FromRecord(d)
	}
	return set
}

// OptionsFor turns install's boot configuration into writer options; crash tests reach the
// writer's own steps through failpoint hooks.
func OptionsFor(c *record.BootConfig, failpoint func(string) error) Options {
	o := Options{BootSeparate: c.BootSeparate, FSUUID: c.FSUUID, Grub: c.Grub || c.Bootloader == "grub", Failpoint: failpoint}
	if c.FAT {
		o.Mode = ModeFAT
	}
	return o
}
