// Command extract reads the agent's pkg/obfuscate sql_test.go (from the Go module cache, at the
// version pinned in ../go.mod) with go/ast and writes its SQL test tables as JSON data:
// inputs, configs and expected outputs only. Nothing of the agent's code is kept.
//
//	cd data-pipeline/tests/go-differential && go run ./extract > ../data/obfuscate/sql.json
package main

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"
)

const modPath = "github.com/DataDog/datadog-agent/pkg/obfuscate"

// sqlConfigKeys maps the agent's SQLConfig Go field names to their JSON config keys.
var sqlConfigKeys = map[string]string{
	"DBMS": "dbms", "TableNames": "table_names", "CollectCommands": "collect_commands",
	"CollectComments": "collect_comments", "CollectProcedures": "collect_procedures",
	"ReplaceDigits": "replace_digits", "KeepSQLAlias": "keep_sql_alias",
	"DollarQuotedFunc": "dollar_quoted_func", "ObfuscationMode": "obfuscation_mode",
	"RemoveSpaceBetweenParentheses": "remove_space_between_parentheses", "KeepNull": "keep_null",
	"KeepBoolean": "keep_boolean", "KeepPositionalParameter": "keep_positional_parameter",
	"KeepTrailingSemicolon": "keep_trailing_semicolon", "KeepIdentifierQuotation": "keep_identifier_quotation",
	"KeepJSONPath": "keep_json_path", "ReplaceBindParameter": "replace_bind_parameter",
}

// flagKeys maps the per-row bool fields of the sqllexer tables to config keys.
var flagKeys = map[string]string{
	"replaceDigits": "replace_digits", "dollarQuotedFunc": "dollar_quoted_func",
	"keepSQLAlias": "keep_sql_alias", "collectProcedures": "collect_procedures",
	"removeSpaceBetweenParentheses": "remove_space_between_parentheses", "keepNull": "keep_null",
	"keepBoolean": "keep_boolean", "keepPositionalParameter": "keep_positional_parameter",
	"keepTrailingSemicolon": "keep_trailing_semicolon", "keepIdentifierQuotation": "keep_identifier_quotation",
	"KeepJSONPath": "keep_json_path", "replaceBindParameter": "replace_bind_parameter",
}

var metadataKeys = map[string]string{
	"Size": "size", "TablesCSV": "tables_csv", "Commands": "commands", "Comments": "comments", "Procedures": "procedures",
}

type Case struct {
	Name     string         `json:"name"`
	Group    string         `json:"group"`
	Query    string         `json:"query"`
	Config   map[string]any `json:"config"`
	Expected *string        `json:"expected,omitempty"`
	// ExpectedError: the agent's error message; "" means "any error" (the test checks only that one occurs).
	ExpectedError *string `json:"expected_error,omitempty"`
	// ExpectedTables is the comma-separated table list the test asserts, when it asserts one.
	ExpectedTables *string `json:"expected_tables,omitempty"`
	// ExpectedMetadata is the full metadata the test asserts, when it does.
	ExpectedMetadata map[string]any `json:"expected_metadata,omitempty"`
	// SameAsConfig: the test asserts only that the result equals the one obtained with this config.
	SameAsConfig map[string]any `json:"same_as_config,omitempty"`
	// InitialLiteralEscapes / FinalLiteralEscapes: the obfuscator's adaptive escape state before and after.
	InitialLiteralEscapes *bool `json:"initial_literal_escapes,omitempty"`
	FinalLiteralEscapes   *bool `json:"final_literal_escapes,omitempty"`
	// SharedObfuscator: the agent's test runs the whole group through one obfuscator, in order.
	SharedObfuscator bool `json:"shared_obfuscator,omitempty"`
	// ExpectOK: only success is asserted (no output given by the test).
	ExpectOK bool `json:"expect_ok,omitempty"`
	// ExpectAny: nothing is asserted but that the call returns (no hang, no panic).
	ExpectAny bool `json:"expect_any,omitempty"`
}

type NotPorted struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

type Output struct {
	Source        string           `json:"source"`
	Generator     string           `json:"generator"`
	Cases         []Case           `json:"cases"`
	NotPorted     []NotPorted      `json:"not_ported"`
	KnownFailures []map[string]any `json:"known_failures"`
}

var (
	fset      = token.NewFileSet()
	consts    = map[string]ast.Expr{} // package-level consts and vars (string values)
	structs   = map[string][]string{} // named struct type -> field names in order
	out       Output
	notPorted []NotPorted
)

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func main() {
	dirB, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", modPath).Output()
	must(err)
	verB, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", modPath).Output()
	must(err)
	dir := strings.TrimSpace(string(dirB))
	for _, name := range []string{"sql_tokenizer.go", "obfuscate.go", "sql.go", "sql_test.go"} {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, 0)
		must(err)
		collectDecls(f)
	}
	f, err := parser.ParseFile(fset, filepath.Join(dir, "sql_test.go"), nil, 0)
	must(err)
	out.Source = modPath + "@" + strings.TrimSpace(string(verB)) + " sql_test.go"
	out.Generator = "data-pipeline/tests/go-differential/extract (go run ./extract)"
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || !strings.HasPrefix(fn.Name.Name, "Test") {
			continue
		}
		extractFunc(fn)
	}
	out.NotPorted = notPorted
	out.KnownFailures = []map[string]any{}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	must(enc.Encode(out))
}

func collectDecls(f *ast.File) {
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok {
			continue
		}
		for _, s := range g.Specs {
			switch s := s.(type) {
			case *ast.ValueSpec:
				for i, n := range s.Names {
					if i < len(s.Values) {
						consts[n.Name] = s.Values[i]
					}
				}
			case *ast.TypeSpec:
				if st, ok := s.Type.(*ast.StructType); ok {
					structs[s.Name.Name] = fieldNames(st)
				}
			}
		}
	}
}

func fieldNames(st *ast.StructType) []string {
	var names []string
	for _, f := range st.Fields.List {
		for _, n := range f.Names {
			names = append(names, n.Name)
		}
	}
	return names
}

// str evaluates a constant string expression.
func str(e ast.Expr) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind == token.STRING {
			s, err := strconv.Unquote(e.Value)
			return s, err == nil
		}
	case *ast.BinaryExpr:
		if e.Op == token.ADD {
			a, ok1 := str(e.X)
			b, ok2 := str(e.Y)
			return a + b, ok1 && ok2
		}
	case *ast.ParenExpr:
		return str(e.X)
	case *ast.Ident:
		if v, ok := consts[e.Name]; ok {
			return str(v)
		}
	case *ast.CallExpr: // ObfuscationMode("x") style conversions
		if len(e.Args) == 1 {
			return str(e.Args[0])
		}
	}
	return "", false
}

// value evaluates a literal used in a test row: strings, bools, ints, []string, SQLConfig, SQLMetadata.
func value(e ast.Expr) any {
	if s, ok := str(e); ok {
		return s
	}
	switch e := e.(type) {
	case *ast.Ident:
		switch e.Name {
		case "true":
			return true
		case "false":
			return false
		case "nil":
			return nil
		}
		return "<ident:" + e.Name + ">"
	case *ast.BasicLit:
		if e.Kind == token.INT {
			n, _ := strconv.Atoi(e.Value)
			return n
		}
	case *ast.CompositeLit:
		switch t := e.Type.(type) {
		case *ast.Ident:
			switch t.Name {
			case "SQLConfig":
				return keyed(e, sqlConfigKeys)
			case "SQLMetadata":
				return keyed(e, metadataKeys)
			}
		case *ast.ArrayType:
			list := []any{}
			for _, el := range e.Elts {
				list = append(list, value(el))
			}
			return list
		}
	case *ast.CallExpr: // []string(nil)
		if len(e.Args) == 1 {
			if id, ok := e.Args[0].(*ast.Ident); ok && id.Name == "nil" {
				return nil
			}
		}
	case *ast.SelectorExpr:
		return "<sel:" + e.Sel.Name + ">"
	}
	return fmt.Sprintf("<expr at %s>", fset.Position(e.Pos()))
}

func keyed(e *ast.CompositeLit, keys map[string]string) map[string]any {
	m := map[string]any{}
	for _, el := range e.Elts {
		kv, ok := el.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		k := kv.Key.(*ast.Ident).Name
		if jk, ok := keys[k]; ok {
			k = jk
		}
		m[k] = value(kv.Value)
	}
	return m
}

// rows finds the table literals ([]struct{...}{...} or []named{...}) inside node, with the names of the
// enclosing t.Run subtests.
type table struct {
	subtest string
	rows    []map[string]any
	raw     []ast.Expr
}

func tables(fn *ast.FuncDecl) []table {
	var res []table
	var walk func(n ast.Node, sub string)
	walk = func(n ast.Node, sub string) {
		ast.Inspect(n, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Run" && len(call.Args) == 2 {
					name, _ := str(call.Args[0])
					if sub != "" && name != "" {
						name = sub + "/" + name
					} else if name == "" {
						name = sub
					}
					walk(call.Args[1], name)
					return false
				}
			}
			cl, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			at, ok := cl.Type.(*ast.ArrayType)
			if !ok {
				return true
			}
			var fields []string
			switch elt := at.Elt.(type) {
			case *ast.StructType:
				fields = fieldNames(elt)
			case *ast.Ident:
				if elt.Name == "string" {
					t := table{subtest: sub}
					for _, el := range cl.Elts {
						s, _ := str(el)
						t.rows = append(t.rows, map[string]any{"query": s})
						t.raw = append(t.raw, el)
					}
					res = append(res, t)
					return false
				}
				fields = structs[elt.Name]
			}
			if fields == nil {
				return true
			}
			t := table{subtest: sub}
			for _, el := range cl.Elts {
				row := map[string]any{}
				rl, ok := el.(*ast.CompositeLit)
				if !ok {
					continue
				}
				for i, f := range rl.Elts {
					if kv, ok := f.(*ast.KeyValueExpr); ok {
						row[kv.Key.(*ast.Ident).Name] = value(kv.Value)
					} else if i < len(fields) {
						row[fields[i]] = value(f)
					}
				}
				t.rows = append(t.rows, row)
				t.raw = append(t.raw, el)
			}
			res = append(res, t)
			return false
		})
	}
	walk(fn.Body, "")
	return res
}

func sp(s string) *string { return &s }
func bp(b bool) *bool     { return &b }

func get(row map[string]any, names ...string) (string, bool) {
	for _, n := range names {
		if v, ok := row[n].(string); ok {
			return v, true
		}
	}
	return "", false
}

func copyCfg(m map[string]any) map[string]any {
	c := map[string]any{}
	for k, v := range m {
		c[k] = v
	}
	return c
}

func add(c Case) {
	if !utf8.ValidString(c.Query) {
		notPorted = append(notPorted, NotPorted{c.Name, "query is not valid UTF-8: it cannot reach a Rust &str (nor JSON)"})
		return
	}
	if c.Config == nil {
		c.Config = map[string]any{}
	}
	out.Cases = append(out.Cases, c)
}

// metadataFrom turns an SQLMetadata literal into the JSON form the Rust test compares against.
func metadataFrom(v any, sqllexer bool) map[string]any {
	m, _ := v.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	res := map[string]any{"tables_csv": "", "commands": nil, "comments": nil, "procedures": nil, "size": 0}
	if sqllexer {
		res["commands"], res["comments"], res["procedures"] = []any{}, []any{}, []any{}
	}
	for k, v := range m {
		res[k] = v
	}
	return res
}

func extractFunc(fn *ast.FuncDecl) {
	name := fn.Name.Name
	tabs := tables(fn)
	rowName := func(t table, i int, row map[string]any) string {
		n := name
		if t.subtest != "" {
			n += "/" + t.subtest
		}
		if rn, ok := row["name"].(string); ok && rn != "" {
			return n + "/" + rn
		}
		return fmt.Sprintf("%s/%d", n, i)
	}
	switch name {
	case "TestCanObfuscateAutoVacuum", "TestSQLUTF8", "TestMultipleProcess", "TestPGJSONOperators",
		"TestPostgresArraySliceObfuscation", "TestCassQuantizer", "TestSQLQuantizer":
		cfg := map[string]any{}
		if name == "TestPGJSONOperators" || name == "TestPostgresArraySliceObfuscation" {
			cfg["dbms"] = "postgresql"
		}
		shared := name == "TestSQLQuantizer" || name == "TestCassQuantizer" || name == "TestPostgresArraySliceObfuscation"
		for _, t := range tabs {
			for i, row := range t.rows {
				q, _ := get(row, "in", "query")
				e, _ := get(row, "out", "expected")
				add(Case{Name: rowName(t, i, row), Group: name, Query: q, Config: copyCfg(cfg), Expected: sp(e), SharedObfuscator: shared})
			}
		}
	case "TestSQLMetadata":
		for _, t := range tabs {
			for i, row := range t.rows {
				q, _ := get(row, "in")
				e, _ := get(row, "out")
				cfg, _ := row["cfg"].(map[string]any)
				md := metadataFrom(row["metadata"], false)
				delete(md, "size") // the test checks tables, commands and comments only
				delete(md, "procedures")
				add(Case{Name: rowName(t, i, row), Group: name, Query: q, Config: cfg, Expected: sp(e), ExpectedMetadata: md})
			}
		}
	case "TestObfuscatorDBMSBehavior":
		for _, t := range tabs {
			for i, row := range t.rows {
				q, _ := get(row, "in")
				e, _ := get(row, "out")
				tb, _ := get(row, "tables")
				cfg, _ := row["cfg"].(map[string]any)
				add(Case{Name: rowName(t, i, row), Group: name, Query: q, Config: cfg, Expected: sp(e), ExpectedTables: sp(tb)})
			}
		}
	case "TestSQLReplaceDigits":
		for _, t := range tabs {
			cfg := map[string]any{}
			if t.subtest == "on" {
				cfg["replace_digits"] = true
			}
			for i, row := range t.rows {
				q, _ := get(row, "query")
				e, _ := get(row, "obfuscated")
				add(Case{Name: rowName(t, i, row), Group: name, Query: q, Config: cfg, Expected: sp(e), ExpectedTables: sp("")})
			}
		}
	case "TestSQLTableFinderAndReplaceDigits":
		for _, t := range tabs {
			for i, row := range t.rows {
				q, _ := get(row, "query")
				e, _ := get(row, "obfuscated")
				tb, _ := get(row, "tables")
				add(Case{Name: rowName(t, i, row), Group: name, Query: q,
					Config:   map[string]any{"table_names": true, "replace_digits": true},
					Expected: sp(e), ExpectedTables: sp(tb)})
			}
		}
		// The "off" subtest: no table names without the flag.
		add(Case{Name: name + "/off", Group: name, Query: "DELETE FROM table WHERE table.a=1", Config: map[string]any{},
			Expected: sp("DELETE FROM table WHERE table.a = ?"), ExpectedTables: sp("")})
	case "TestSQLErrors":
		for _, t := range tabs {
			for i, row := range t.rows {
				q, _ := get(row, "query")
				e, _ := get(row, "expected")
				add(Case{Name: rowName(t, i, row), Group: name, Query: q, Config: map[string]any{}, ExpectedError: sp(e)})
			}
		}
	case "TestLiteralEscapesUpdates":
		for _, t := range tabs {
			for i, row := range t.rows {
				q, _ := get(row, "query")
				c := Case{Name: rowName(t, i, row), Group: name, Query: q, Config: map[string]any{},
					InitialLiteralEscapes: bp(row["initial"] == true), FinalLiteralEscapes: bp(row["want"] == true)}
				// err is errors.New("...") in the test.
				c.ExpectOK = true
				for _, el := range t.raw[i].(*ast.CompositeLit).Elts {
					if call, ok := el.(*ast.CallExpr); ok && len(call.Args) == 1 {
						if s, ok := str(call.Args[0]); ok {
							c.ExpectedError = sp(s)
							c.ExpectOK = false
						}
					}
				}
				add(c)
			}
		}
	case "TestParseNumber":
		for _, t := range tabs {
			for i, row := range t.rows {
				q, _ := get(row, "query")
				add(Case{Name: fmt.Sprintf("%s/%d", name, i), Group: name, Query: q, Config: map[string]any{}, Expected: sp("?"), SharedObfuscator: true})
			}
		}
	case "TestSQLLexerObfuscation", "TestSQLLexerObfuscationAndNormalization", "TestSQLLexerNormalization", "TestSQLLexerObfuscationModeNotSet":
		base := map[string]any{}
		switch name {
		case "TestSQLLexerObfuscation":
			base["obfuscation_mode"] = "obfuscate_only"
		case "TestSQLLexerObfuscationAndNormalization":
			base["obfuscation_mode"] = "obfuscate_and_normalize"
		case "TestSQLLexerNormalization":
			base["obfuscation_mode"] = "normalize_only"
		}
		if name != "TestSQLLexerObfuscation" {
			base["table_names"], base["collect_commands"], base["collect_comments"] = true, true, true
		}
		for _, t := range tabs {
			for i, row := range t.rows {
				cfg := copyCfg(base)
				for f, k := range flagKeys {
					if v, ok := row[f].(bool); ok && v {
						cfg[k] = true
					}
				}
				q, _ := get(row, "query")
				e, _ := get(row, "expected")
				c := Case{Name: rowName(t, i, row), Group: name, Query: q, Config: cfg, Expected: sp(e)}
				if md, ok := row["metadata"]; ok {
					c.ExpectedMetadata = metadataFrom(md, name != "TestSQLLexerObfuscationModeNotSet")
				} else if name != "TestSQLLexerObfuscation" {
					c.ExpectedMetadata = metadataFrom(nil, name != "TestSQLLexerObfuscationModeNotSet")
				}
				add(c)
			}
		}
	case "TestSQLLexerOutputsSameAsObfuscator":
		legacy := map[string]any{"replace_digits": true, "dollar_quoted_func": true, "keep_sql_alias": true,
			"table_names": true, "collect_commands": true, "collect_comments": true}
		for _, t := range tabs {
			for i, row := range t.rows {
				q, _ := get(row, "query")
				cfg := copyCfg(legacy)
				cfg["obfuscation_mode"] = "obfuscate_and_normalize"
				add(Case{Name: rowName(t, i, row), Group: name, Query: q, Config: cfg, SameAsConfig: copyCfg(legacy)})
			}
		}
	case "TestKeepSQLAlias", "TestDollarQuotedFunc", "TestSingleDollarIdentifier", "TestConsumerError",
		"TestSQLLexerObfuscationModeInvalid", "TestUnicodeDigit":
		subtests(fn)
	default:
		notPorted = append(notPorted, NotPorted{name, "not a query-in/result-out table (tokenizer internals, cache, or helper)"})
	}
}

// subtests handles tests written as straight-line code: the query is a `q := "..."` variable or the
// ObfuscateSQLString argument, the config the SQLConfig literal, the expectation the assert.Equal
// on oq.Query (or assert/require on err).
func subtests(fn *ast.FuncDecl) {
	name := fn.Name.Name
	vars := map[string]string{}
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		if as, ok := n.(*ast.AssignStmt); ok && len(as.Lhs) == 1 && len(as.Rhs) == 1 {
			if id, ok := as.Lhs[0].(*ast.Ident); ok {
				if s, ok := str(as.Rhs[0]); ok {
					vars[id.Name] = s
				}
			}
		}
		return true
	})
	var visit func(body ast.Node, sub string)
	visit = func(body ast.Node, sub string) {
		var c Case
		found := false
		var nested bool
		ast.Inspect(body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			var fname string
			switch f := call.Fun.(type) {
			case *ast.SelectorExpr:
				fname = f.Sel.Name
			case *ast.Ident:
				fname = f.Name
			default:
				return true
			}
			switch fname {
			case "Run":
				if len(call.Args) == 2 {
					s, _ := str(call.Args[0])
					nm := s
					if sub != "" {
						nm = sub + "/" + s
					}
					visit(call.Args[1], nm)
					nested = true
					return false
				}
			case "ObfuscateSQLString":
				found = true
				if id, ok := call.Args[0].(*ast.Ident); ok {
					c.Query = vars[id.Name]
				} else {
					c.Query, _ = str(call.Args[0])
				}
			case "NewObfuscator":
				ast.Inspect(call, func(n ast.Node) bool {
					if cl, ok := n.(*ast.CompositeLit); ok {
						if id, ok := cl.Type.(*ast.Ident); ok && id.Name == "SQLConfig" {
							c.Config = keyed(cl, sqlConfigKeys)
							return false
						}
					}
					return true
				})
			case "Equal":
				if len(call.Args) >= 2 {
					a := call.Args[len(call.Args)-2]
					if s, ok := str(a); ok {
						c.Expected = sp(s)
					}
				}
			case "Error", "NotNil":
				if len(call.Args) >= 1 {
					if id, ok := call.Args[len(call.Args)-1].(*ast.Ident); ok && id.Name == "err" {
						c.ExpectedError = sp("")
					}
				}
			}
			return true
		})
		if !found || (nested && c.Query == "") {
			return
		}
		c.Name = name
		if sub != "" {
			c.Name += "/" + sub
		}
		c.Group = name
		if c.Config == nil {
			c.Config = map[string]any{}
		}
		// resolve const idents such as DBMSSQLServer
		for k, v := range c.Config {
			if s, ok := v.(string); ok && strings.HasPrefix(s, "<ident:") {
				if val, ok := consts[strings.TrimSuffix(strings.TrimPrefix(s, "<ident:"), ">")]; ok {
					c.Config[k], _ = str(val)
				}
			}
		}
		if c.Expected == nil && c.ExpectedError == nil {
			c.ExpectAny = true
		}
		add(c)
	}
	visit(fn.Body, "")
}
