module gobootc.dev/generators

go 1.26

require gobootc.dev/lib v0.0.0

require golang.org/x/sys v0.46.0 // indirect

replace gobootc.dev/lib => ../lib
