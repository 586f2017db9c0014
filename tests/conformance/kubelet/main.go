// Command kubelet prints what the kubelet's own log reader makes of one container log file: the
// bytes that k8s.io/cri-client/pkg/logs.ReadLogs (the code behind `kubectl logs --timestamps`)
// writes to stdout and stderr, and the error it returns, as JSON ({"stdout", "stderr": base64;
// "error": text or null}). servelog's conformance cases record it in kubelet.json:
//
//	python -m tests.conformance.regenerate --kubelet
//
// It is a reference for the tests, never part of servelog; only regenerating needs Go.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"

	"k8s.io/cri-client/pkg/logs"
)

type output struct {
	Stdout []byte  `json:"stdout"`
	Stderr []byte  `json:"stderr"`
	Error  *string `json:"error"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: kubelet FILE")
		os.Exit(2)
	}
	var stdout, stderr bytes.Buffer
	// Not following, so no runtime service is consulted.
	err := logs.ReadLogs(context.Background(), os.Args[1], "", &logs.LogOptions{Timestamp: true}, nil, &stdout, &stderr)
	out := output{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if err != nil {
		text := err.Error()
		out.Error = &text
	}
	encoded, _ := json.Marshal(out)
	fmt.Println(string(encoded))
}
