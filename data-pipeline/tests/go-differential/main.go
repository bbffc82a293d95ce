// Command sqldiff answers, for each JSON line {"query": Q, "config": {...}} on stdin, one JSON line
// with what the Datadog agent's SQL obfuscator (github.com/DataDog/datadog-agent/pkg/obfuscate, the
// version pinned in go.mod) returns: {"result", "tables_csv", "commands", "comments", "procedures"}
// or {"error"}. Every query gets a fresh obfuscator, so the agent's adaptive escape state does not
// carry from one line to the next.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"github.com/DataDog/datadog-agent/pkg/obfuscate"
)

type request struct {
	Query  string              `json:"query"`
	Config obfuscate.SQLConfig `json:"config"`
}

func answer(line []byte) (res map[string]any) {
	defer func() {
		if r := recover(); r != nil {
			res = map[string]any{"error": fmt.Sprintf("panic: %v", r)}
		}
	}()
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		return map[string]any{"error": "bad request: " + err.Error()}
	}
	o := obfuscate.NewObfuscator(obfuscate.Config{SQL: req.Config})
	defer o.Stop()
	oq, err := o.ObfuscateSQLString(req.Query)
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	return map[string]any{
		"result":     oq.Query,
		"tables_csv": oq.Metadata.TablesCSV,
		"commands":   oq.Metadata.Commands,
		"comments":   oq.Metadata.Comments,
		"procedures": oq.Metadata.Procedures,
		"size":       oq.Metadata.Size,
	}
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	for in.Scan() {
		if len(in.Bytes()) == 0 {
			continue
		}
		_ = enc.Encode(answer(in.Bytes()))
		out.Flush()
	}
}
