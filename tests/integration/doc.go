// Package integration holds the tests that drive real registries, loop devices and VMs against
// the built tools.
package integration
