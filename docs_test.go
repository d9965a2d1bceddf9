// Tests of the repository's documentation: what README.md and the examples
// in comments say must agree with the code, the seed catalog and the
// Makefile.
package tokencart_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tokencart/tokencart/catalogsvc"
)

// productRefs find the product ids that docs and examples use: in JSON
// requests, Go requests and tokencartctl commands. Upper-case placeholders
// (PRODUCT) do not match.
var productRefs = []*regexp.Regexp{
	regexp.MustCompile(`"product_id":\s*"([a-z0-9-]+)"`),
	regexp.MustCompile(`ProductId:\s*"([a-z0-9-]+)"`),
	regexp.MustCompile(`tokencartctl (?:--[a-z-]+ )*cart (?:add|set|remove) ([a-z0-9-]+)`),
}

// docFiles returns the Markdown files, the Go files other than tests
// (whose comments hold the package examples) and the Example test files.
func docFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "gen" || d.Name() == "var" || d.Name() == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		name := d.Name()
		if strings.HasSuffix(name, ".md") || name == "example_test.go" ||
			(strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go")) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestDocumentedProductsExist: every product id that README.md, the other
// Markdown files and the examples in comments use is in the seed catalog,
// so that a reader who copies a command against make run gets a product,
// not NOT_FOUND.
func TestDocumentedProductsExist(t *testing.T) {
	t.Parallel()
	seed, err := catalogsvc.SeedProducts()
	if err != nil {
		t.Fatal(err)
	}
	seeded := map[string]bool{}
	for _, p := range seed {
		seeded[p.ID] = true
	}
	found := 0
	for _, path := range docFiles(t) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, re := range productRefs {
			for _, m := range re.FindAllStringSubmatch(string(b), -1) {
				found++
				if !seeded[m[1]] {
					t.Errorf("%s uses product %q, which the seed catalog lacks", path, m[1])
				}
			}
		}
	}
	if found == 0 {
		t.Error("no product id found in the docs: the patterns no longer match them")
	}
}

// TestMakeTargetsDocumented: README's table of make targets lists exactly
// the targets that make help lists (those with a ## description).
func TestMakeTargetsDocumented(t *testing.T) {
	t.Parallel()
	makefile, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, m := range regexp.MustCompile(`(?m)^([a-z-]+):.*## `).FindAllStringSubmatch(string(makefile), -1) {
		targets = append(targets, m[1])
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(readme), "\n## Make targets\n")
	if !ok {
		t.Fatal(`README.md has no "## Make targets" section`)
	}
	table, _, _ = strings.Cut(table, "\n## ")
	var documented []string
	for _, line := range strings.Split(table, "\n") {
		if first, _, ok := strings.Cut(strings.TrimPrefix(line, "| "), " |"); ok && strings.HasPrefix(line, "| `make") {
			for _, m := range regexp.MustCompile("`make ([a-z-]+)`").FindAllStringSubmatch(first, -1) {
				documented = append(documented, m[1])
			}
		}
	}
	slices.Sort(targets)
	slices.Sort(documented)
	if !slices.Equal(targets, documented) {
		t.Errorf("README's make targets %q, make help's %q", documented, targets)
	}
}

// TestImageTagMatchesDevOverlay: make image tags the images as the dev
// overlay runs them.
func TestImageTagMatchesDevOverlay(t *testing.T) {
	t.Parallel()
	makefile, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	tag := regexp.MustCompile(`(?m)^IMAGE_TAG \?= (\S+)$`).FindSubmatch(makefile)
	if tag == nil {
		t.Fatal("Makefile sets no default IMAGE_TAG")
	}
	if !regexp.MustCompile(`(?m)tokencart/authsvc:\$\(IMAGE_TAG\)`).Match(makefile) ||
		!regexp.MustCompile(`(?m)tokencart/catalogsvc:\$\(IMAGE_TAG\)`).Match(makefile) {
		t.Error("make image does not tag both images with IMAGE_TAG")
	}
	overlay, err := os.ReadFile("deploy/k8s/overlays/dev/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tags := regexp.MustCompile(`(?m)^\s*newTag:\s*(\S+)\s*$`).FindAllSubmatch(overlay, -1)
	if len(tags) != 2 {
		t.Fatalf("dev overlay: %d newTag lines, want one per image", len(tags))
	}
	for _, got := range tags {
		if string(got[1]) != string(tag[1]) {
			t.Errorf("dev overlay runs tag %q, make image builds %q", got[1], tag[1])
		}
	}
}
