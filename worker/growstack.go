package worker

// growStack grows the calling goroutine's stack to about 16 KiB in one
// step. asynq runs every task on a new goroutine, whose stack starts small;
// a send through the FCM SDK then outgrows it two or three times, copying
// it each time (about a tenth of a worker's CPU in `crier bench` profiles).
// Growing it once, while it is shallow, is a single cheap copy. CockroachDB
// does the same (util/growstack).
//
//go:noinline
func growStack() {
	var buf [12 << 10]byte
	touch(buf[:])
}

//go:noinline
func touch(b []byte) { b[0] = 0 }
