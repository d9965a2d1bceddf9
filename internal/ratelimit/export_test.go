package ratelimit

// Remembered returns how many callers p holds a bucket for.
func Remembered(p *PerCaller) int {
	n := 0
	for i := range p.shards {
		p.shards[i].mu.Lock()
		n += len(p.shards[i].buckets)
		p.shards[i].mu.Unlock()
	}
	return n
}
