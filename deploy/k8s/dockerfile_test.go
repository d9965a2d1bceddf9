package k8s_test

import (
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// dockerfile is the repository's Dockerfile; tests run in deploy/k8s.
const dockerfile = "../../Dockerfile"

// stage is one FROM ... [AS name] section of a Dockerfile.
type stage struct {
	base, name string
	// instructions are the stage's lines after FROM, continuations joined,
	// each as its upper-case keyword and the rest.
	instructions [][2]string
}

// parseDockerfile splits a Dockerfile into its global ARGs and its stages.
// It understands what this repository's Dockerfile uses: comments, line
// continuations and FROM [--platform=...] image [AS name].
func parseDockerfile(text string) (globalArgs []string, stages []stage) {
	var logical []string
	var cur strings.Builder
	for line := range strings.SplitSeq(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		logical = append(logical, cur.String())
		cur.Reset()
	}
	for _, l := range logical {
		kw, rest, _ := strings.Cut(l, " ")
		kw, rest = strings.ToUpper(kw), strings.TrimSpace(rest)
		if kw == "FROM" {
			f := slices.DeleteFunc(strings.Fields(rest), func(s string) bool { return strings.HasPrefix(s, "--") })
			s := stage{base: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			if kw == "ARG" {
				globalArgs = append(globalArgs, rest)
			}
			continue
		}
		stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, [2]string{kw, rest})
	}
	return globalArgs, stages
}

// The Dockerfile must build each binary statically and run it as the
// nonroot user the manifests require, exposing the ports the binary
// listens on by default.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	globalArgs, stages := parseDockerfile(string(b))
	byName := make(map[string]*stage)
	for i := range stages {
		if stages[i].name != "" {
			byName[stages[i].name] = &stages[i]
		}
	}
	// chain returns the stage and the stages it is built FROM, nearest first.
	chain := func(s *stage) []*stage {
		var out []*stage
		for s != nil && len(out) <= len(stages) {
			out = append(out, s)
			s = byName[s.base]
		}
		return out
	}
	// last returns the last value of instruction kw along the chain.
	last := func(ch []*stage, kw string) (string, bool) {
		for _, s := range ch {
			for i := len(s.instructions) - 1; i >= 0; i-- {
				if s.instructions[i][0] == kw {
					return s.instructions[i][1], true
				}
			}
		}
		return "", false
	}

	if !slices.ContainsFunc(globalArgs, func(a string) bool { return strings.HasPrefix(a, "SERVICE") }) {
		t.Error("no global ARG SERVICE: `docker build --build-arg SERVICE=...` must choose the image")
	}
	if final := stages[len(stages)-1]; final.base != "${SERVICE}" {
		t.Errorf("the last stage is FROM %s, want FROM ${SERVICE} so the build arg picks the image", final.base)
	}

	for _, bin := range binaries(t) {
		t.Run(bin.name, func(t *testing.T) {
			t.Parallel()
			s := byName[bin.name]
			if s == nil {
				t.Fatalf("no stage named %s", bin.name)
			}
			ch := chain(s)
			root := ch[len(ch)-1].base
			if !strings.HasPrefix(root, "gcr.io/distroless/static") && root != "scratch" {
				t.Errorf("runtime image is based on %s, want distroless/static or scratch", root)
			}
			if user, _ := last(ch, "USER"); strings.Split(user, ":")[0] != strconv.Itoa(nonrootUID) {
				t.Errorf("USER %q, want %d (numeric, so the kubelet can enforce runAsNonRoot)", user, nonrootUID)
			}

			fs, _ := bin.newFlags()
			var want []string
			for _, name := range []string{"grpc-addr", "admin-addr"} {
				_, port, _ := strings.Cut(fs.Lookup(name).DefValue, ":")
				want = append(want, port)
			}
			expose, _ := last(ch, "EXPOSE")
			if got := strings.Fields(expose); !slices.Equal(got, want) {
				t.Errorf("EXPOSE %v, want the binary's default gRPC and admin ports %v", got, want)
			}

			// Exec form: the binary is PID 1 and gets SIGTERM (the image has
			// no shell to run the shell form anyway).
			ep, _ := last(ch, "ENTRYPOINT")
			var argv []string
			if err := json.Unmarshal([]byte(ep), &argv); err != nil || len(argv) == 0 || !strings.HasSuffix(argv[0], "/"+bin.name) {
				t.Errorf("ENTRYPOINT %s, want exec form running the %s binary", ep, bin.name)
			}

			// The build that produces it: static and reproducible.
			var build string
			for _, st := range stages {
				for _, in := range st.instructions {
					if in[0] == "RUN" && strings.Contains(in[1], "go build") && strings.Contains(in[1], "./cmd/"+bin.name) {
						build = in[1]
					}
				}
			}
			if build == "" {
				t.Fatalf("no RUN go build ./cmd/%s", bin.name)
			}
			if !strings.Contains(build, "-trimpath") {
				t.Errorf("go build of %s lacks -trimpath", bin.name)
			}
			if !strings.Contains(string(b), "CGO_ENABLED=0") {
				t.Error("the build does not set CGO_ENABLED=0: the binary would need libc, which distroless/static lacks")
			}
		})
	}
}

func TestDockerignore(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for _, want := range []string{".git", "bin", ".tools", "var"} {
		if !slices.Contains(lines, want) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
	for _, need := range []string{"go.mod", "go.sum", "cmd", "internal", "gen", "authsvc", "catalogsvc"} {
		if slices.Contains(lines, need) || slices.Contains(lines, need+"/") {
			t.Errorf(".dockerignore excludes %s, which the build needs", need)
		}
	}
}
