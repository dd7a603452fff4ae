module gobootc.dev/tools/bootc-bound-images

go 1.26

require gobootc.dev/lib v0.0.0

require (
	github.com/alecthomas/kong v1.17.0 // indirect
	golang.org/x/sys v0.46.0 // indirect
	golang.org/x/term v0.44.0 // indirect
)

replace gobootc.dev/lib => ../../lib
