module gobootc.dev/tools/bootc-kargs

go 1.26

require (
	github.com/alecthomas/kong v1.17.0
	gobootc.dev/lib v0.0.0
)

require (
	github.com/BurntSushi/toml v1.6.0 // indirect
	golang.org/x/sys v0.46.0 // indirect
	golang.org/x/term v0.44.0 // indirect
)

replace gobootc.dev/lib => ../../lib
