// Package bootcount is the one source of "tries left" for a boot entry on trial: the counter in
// a Boot Loader Specification entry's file name that systemd-boot counts down, the grubenv
// variables GRUB counts with (greenboot's boot_counter and boot_success), and how many tries a
// new entry gets.
//
// # Entry names
//
// systemd's boot assessment keeps the counter in the entry's file name, NAME+LEFT[-DONE].conf:
// before each boot of a counted entry systemd-boot renames it with one try less left and one
// more done (x+3.conf, x+2-1.conf, x+1-2.conf, x+0-3.conf), and systemd-bless-boot removes the
// counter (x.conf) once the boot reached boot-complete.target. An entry with no tries left is
// bad: boot loaders sort it below every other entry, so the next boot falls back. ParseName
// reads a name exactly as systemd-boot does, so an entry is recognised whatever its counter
// says; Name.ID is the entry without it.
//
// # grubenv
//
// GRUB keeps its counter in the environment block (see Env), with greenboot's variables:
// boot_counter holds the tries left for the new default entry (unset when no trial is under
// way, -1 once GRUB fell back) and boot_success says whether the last boot was good.
//
// # Tries
//
// A new default entry gets LoadTries' number of boots, 3 unless configured. Three sources are
// read, the first that sets a value wins:
//
//  1. the administrator's drop-ins, /etc/bootc/bootcount.d/*.toml;
//  2. greenboot's /etc/greenboot/greenboot.conf: GREENBOOT_MAX_BOOT_ATTEMPTS, or else
//     GREENBOOT_MAX_BOOTS (which vendors document for greenboot although greenboot never read
//     it), so that existing setups keep their number;
//  3. the image's drop-ins, /usr/lib/bootc/bootcount.d/*.toml.
//
// A drop-in is a TOML file with one key:
//
//	# tries: boots a new default entry gets before the boot loader falls back (1 to 100)
//	tries = 2
//
// The name follows kernel-install's /etc/kernel/tries, which sets the same number for
// systemd-boot entries. Within a directory files apply in byte order of their names, a later
// one winning; a file in /etc/bootc/bootcount.d replaces the image's file of the same name, as
// systemd's drop-ins do, so an empty file (or a symlink to /dev/null) there masks it. Only
// *.toml files are read; an unknown key, a value of the wrong type or out of range is an error
// naming the file and the key. greenboot.conf is read as bash would source it, without running
// anything (the greenboot package parses it); other keys are ignored, and an empty value counts
// as unset, as greenboot treats it. A value that is not a number from 1 to MaxTries, an array or
// an expansion ($N) is an error naming the file and the key.
package bootcount
