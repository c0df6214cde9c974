// Package chanbatch takes items off a channel in batches without a linger: wait
// for the first item, then take only what is already queued. A batch is as
// large as the backlog, up to a cap, and a lone item goes at once.
package chanbatch

import "context"

// First waits for one item. It reports false when ch is closed or ctx ends.
func First[T any](ctx context.Context, ch <-chan T) (T, bool) {
	select {
	case v, ok := <-ch:
		return v, ok
	case <-ctx.Done():
		var zero T
		return zero, false
	}
}

// Fill appends to batch what ch already holds, until batch has max items, and
// never waits. It reports false when it found ch closed.
func Fill[T any](ch <-chan T, batch []T, max int) ([]T, bool) {
	for len(batch) < max {
		select {
		case v, ok := <-ch:
			if !ok {
				return batch, false
			}
			batch = append(batch, v)
		default:
			return batch, true
		}
	}
	return batch, true
}
