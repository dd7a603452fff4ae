module gobootc.dev/tests/integration

go 1.26

require gobootc.dev/lib v0.0.0

replace gobootc.dev/lib => ../../lib
