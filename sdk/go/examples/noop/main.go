// The no-op function: every event succeeds with no output, and nothing is logged. The
// stdio-go row of bench/runtimes_bench.cc measures the SDK's own cost with it.
package main

import (
	"context"

	sluice "sluice.dev/sdk/go"
)

func main() {
	sluice.Run(func(context.Context, *sluice.Event) (*sluice.Response, error) { return nil, nil })
}
