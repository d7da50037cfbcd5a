// The echo function: data uppercased; "poison" is rejected; "fanout" also emits one event.
package main

import (
	"bytes"
	"context"

	sluice "sluice.dev/sdk/go"
)

func main() {
	sluice.Run(func(ctx context.Context, ev *sluice.Event) (*sluice.Response, error) {
		if string(ev.Data) == "poison" {
			return nil, sluice.Rejectf("poison")
		}
		sluice.Infof(ctx, "echo %s", ev.Id)
		res := &sluice.Response{Output: bytes.ToUpper(ev.Data), ContentType: ev.DataContentType}
		if string(ev.Data) == "fanout" {
			res.Emit = append(res.Emit, &sluice.Event{Id: ev.Id + "-fanout", Source: "/sluice/echo",
				SpecVersion: "1.0", Type: "sluice.echo.fanout", DataContentType: "text/plain", Data: []byte("FANOUT")})
		}
		return res, nil
	})
}
