module example.invalid/sqldiff

go 1.26.0

require github.com/DataDog/datadog-agent/pkg/obfuscate v0.85.1

require (
	github.com/DataDog/datadog-go/v5 v5.9.1 // indirect
	github.com/DataDog/go-sqllexer v0.2.4 // indirect
	github.com/Microsoft/go-winio v0.6.2 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/dustin/go-humanize v1.1.0 // indirect
	github.com/outcaste-io/ristretto v0.2.3 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
