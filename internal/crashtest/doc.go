// Package crashtest holds crier's crash-safety tests: they run crier as real
// OS processes (`crier api`, `crier worker`, `crier serve`) against real
// PostgreSQL and Redis and the in-process emulator, kill them with SIGKILL,
// take Redis and Postgres away and bring them back, and check that every
// device still gets its push, and gets it once (or within a stated bound).
// The package has tests only.
package crashtest
