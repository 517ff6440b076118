package wire_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// allowedImports is the import fence of package wire: it must stay
// portable (no reflect or unsafe) and cheap (no fmt, os, time or sync).
var allowedImports = map[string]bool{
	"errors": true, "math": true, "math/bits": true, "slices": true, "cmp": true,
	"sort": true, "strconv": true, "encoding/binary": true, "hash/crc32": true,
	"unicode/utf8": true, "iter": true, "github.com/embraft/embraft/raft": true,
}

// TestImportFence parses the package's non-test files and fails on any
// import outside the fence.
func TestImportFence(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !allowedImports[path] {
				t.Errorf("%s imports %q, which is outside the wire import fence", name, path)
			}
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no package files found")
	}
}
