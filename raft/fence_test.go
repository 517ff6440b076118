package raft

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// corePortableImports is the only standard library the core packages may
// import: nothing that does I/O, reads clocks, spawns goroutines, reflects
// or formats, so the core builds for microcontroller toolchains.
var corePortableImports = map[string]bool{
	"errors": true, "math": true, "math/bits": true, "slices": true, "cmp": true,
	"sort": true, "strconv": true, "encoding/binary": true, "hash/crc32": true,
	"unicode/utf8": true, "iter": true,
}

const modulePath = "github.com/embraft/embraft/"

// TestImportFence fails if any non-test file of raft/ or wire/ imports a
// package outside the portable set.
func TestImportFence(t *testing.T) {
	for _, dir := range []string{".", "../wire"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			checkFileImports(t, f)
		}
	}
}

func checkFileImports(t *testing.T, path string) {
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	af, err := parser.ParseFile(token.NewFileSet(), path, src, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range af.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if !corePortableImports[p] && !strings.HasPrefix(p, modulePath) {
			t.Errorf("%s imports %q, outside the core's portable set", path, p)
		}
	}
}
