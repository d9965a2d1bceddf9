package gen_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// protoDir holds the API's protos, relative to this package.
const protoDir = "../proto"

// TestDistributionProtoc compiles the API's protos with the protoc that
// Linux distributions ship (Debian's protobuf-compiler: 3.21 in Debian 12
// and Ubuntu 24.04, which reads proto2 and proto3 but no editions) to
// Python and C++ stubs, and checks the stubs with the tools of those
// languages when they are installed: what a team using another language
// does first.
func TestDistributionProtoc(t *testing.T) {
	protoc := lookPath(t, "protoc", "apt-get install protobuf-compiler")
	protos := protoFiles(t)
	// Debian's protoc does not search the well-known types' directory
	// (package libprotobuf-dev) by itself.
	args := []string{"-I", protoDir}
	if _, err := os.Stat("/usr/include/google/protobuf/timestamp.proto"); err == nil {
		args = append(args, "-I", "/usr/include")
	}
	out := t.TempDir()
	version, _ := exec.Command(protoc, "--version").Output()
	cmd := exec.Command(protoc, append(args, "--python_out="+out, "--cpp_out="+out)...)
	cmd.Args = append(cmd.Args, protos...)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s (%s) %v: %v\n%s", protoc, strings.TrimSpace(string(version)), cmd.Args[1:], err, b)
	}
	// protoc also warns on success (such as an unused import): a warning
	// is a change to make here.
	if len(b) != 0 {
		t.Errorf("protoc warned:\n%s", b)
	}

	var python, cpp []string
	for _, p := range protos {
		base := strings.TrimSuffix(p, ".proto")
		python = append(python, filepath.Join(out, base+"_pb2.py"))
		cpp = append(cpp, filepath.Join(out, base+".pb.cc"))
		for _, f := range []string{base + "_pb2.py", base + ".pb.h", base + ".pb.cc"} {
			if _, err := os.Stat(filepath.Join(out, f)); err != nil {
				t.Errorf("protoc wrote no %s: %v", f, err)
			}
		}
	}
	t.Run("python", func(t *testing.T) {
		python3 := lookPath(t, "python3", "apt-get install python3")
		check(t, exec.Command(python3, append([]string{"-m", "py_compile"}, python...)...))
	})
	t.Run("c++", func(t *testing.T) {
		// The headers of the protobuf runtime that matches protoc come
		// with it (libprotobuf-dev); syntax only: nothing is linked.
		gxx := lookPath(t, "g++", "apt-get install g++")
		cmd := exec.Command(gxx, append([]string{"-std=c++17", "-fsyntax-only", "-I", out}, cpp...)...)
		check(t, cmd)
	})
}

// protoFiles returns the paths of the API's protos relative to protoDir.
func protoFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(protoDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".proto") {
			rel, relErr := filepath.Rel(protoDir, path)
			files = append(files, filepath.ToSlash(rel))
			return relErr
		}
		return err
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("no protos under %s: %v", protoDir, err)
	}
	return files
}

// lookPath returns the path of a program, skipping t when it is missing,
// or failing it under CI=true, where every tool must be installed.
func lookPath(t *testing.T, name, install string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not on PATH (%s; .ci/run installs it)", name, install)
		}
		t.Skipf("skipping: %s not on PATH (%s)", name, install)
	}
	return path
}

// check runs cmd and fails t with its output if it fails.
func check(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, b)
	}
}
