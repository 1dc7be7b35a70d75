package sweep

// Checks of the files that put pad on a cluster: docker/Dockerfile and the
// repository's .dockerignore (no Docker engine runs here, so the Dockerfile
// is parsed and held to the rules that matter), and the manifests and
// script in deploy/.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int    // where it starts
	cmd  string // upper case: FROM, RUN, ...
	args string
}

// stage is one FROM ... stage.
type stage struct {
	from  instruction
	image string // with the ARG defaults substituted
	name  string // AS name
	insts []instruction
}

// parseDockerfile splits a Dockerfile into the global ARGs and the stages.
func parseDockerfile(text string) ([]stage, []string) {
	var problems []string
	var insts []instruction
	var cur *instruction
	for i, raw := range strings.Split(text, "\n") {
		l := strings.TrimSpace(raw)
		if strings.HasPrefix(l, "#") || l == "" && cur == nil {
			continue // comments (also inside continued instructions) and blank lines
		}
		cont := strings.HasSuffix(l, "\\")
		l = strings.TrimSuffix(l, "\\")
		if cur == nil {
			cmd, rest, _ := strings.Cut(l, " ")
			insts = append(insts, instruction{line: i + 1, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(rest)})
			cur = &insts[len(insts)-1]
		} else {
			cur.args += " " + l
		}
		if !cont {
			cur = nil
		}
	}
	args := map[string]string{}
	var stages []stage
	for _, in := range insts {
		switch {
		case in.cmd == "ARG" && len(stages) == 0:
			k, v, _ := strings.Cut(in.args, "=")
			args[k] = strings.Trim(v, `"`)
		case in.cmd == "FROM":
			f := strings.Fields(in.args)
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				f = f[1:]
			}
			if len(f) == 0 {
				problems = append(problems, fmt.Sprintf("line %d: FROM without an image", in.line))
				continue
			}
			st := stage{from: in, image: os.Expand(f[0], func(k string) string { return args[k] })}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
		case len(stages) == 0:
			problems = append(problems, fmt.Sprintf("line %d: %s before the first FROM", in.line, in.cmd))
		default:
			stages[len(stages)-1].insts = append(stages[len(stages)-1].insts, in)
		}
	}
	return stages, problems
}

// pinned reports whether an image reference names a tag other than latest,
// or a digest.
func pinned(image string) bool {
	if strings.Contains(image, "@sha256:") {
		return true
	}
	i := strings.LastIndex(image, ":")
	return i > strings.LastIndex(image, "/") && image[i+1:] != "latest" && image[i+1:] != ""
}

// dockerfileProblems checks a Dockerfile against the rules that matter for
// pad's image and returns what breaks them.
func dockerfileProblems(text string) []string {
	stages, problems := parseDockerfile(text)
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	if len(stages) < 2 {
		bad("%d stages: want a build stage and a runtime stage", len(stages))
		return problems
	}
	names := map[string]bool{}
	for _, st := range stages {
		if !names[st.image] && !pinned(st.image) {
			bad("line %d: FROM %s: pin a tag (not latest) or a digest", st.from.line, st.image)
		}
		if st.name != "" {
			names[st.name] = true
		}
	}
	build, final := stages[0], stages[len(stages)-1]
	if !regexp.MustCompile(`^golang:1\.26(\.\d+)?-`).MatchString(build.image) || build.name == "" {
		bad("build stage: FROM %s AS %q, want golang:1.26.x-... AS <name>", build.image, build.name)
	}
	if !regexp.MustCompile(`^nvidia/cuda:13\.\d+\.\d+-cudnn-runtime-ubuntu\d\d\.\d\d$`).MatchString(final.image) {
		bad("runtime stage: FROM %s, want nvidia/cuda:13.x.y-cudnn-runtime-ubuntuNN.NN", final.image)
	}

	built := false
	for _, in := range build.insts {
		if in.cmd == "RUN" && strings.Contains(in.args, "CGO_ENABLED=0") &&
			strings.Contains(in.args, "go build -trimpath -ldflags='-s -w'") && strings.Contains(in.args, "./cmd/pad") {
			built = true
		}
	}
	if !built {
		bad("the build stage has no RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' ... ./cmd/pad")
	}

	var user, entry, cmd *instruction
	var volumes, labels, envs, workdir []string
	copied, pipefail := false, false
	for i := range final.insts {
		in := &final.insts[i]
		switch in.cmd {
		case "USER":
			user = in
		case "ENTRYPOINT":
			entry = in
			if user == nil {
				bad("line %d: ENTRYPOINT before USER", in.line)
			}
		case "CMD":
			cmd = in
		case "VOLUME":
			v, err := execForm(*in)
			if err != nil {
				bad("line %d: VOLUME %s: %v", in.line, in.args, err)
			}
			volumes = append(volumes, v...)
		case "LABEL", "ENV":
			for _, kv := range regexp.MustCompile(`([A-Za-z_.]+)=`).FindAllStringSubmatch(in.args, -1) {
				if in.cmd == "LABEL" {
					labels = append(labels, kv[1])
				} else {
					envs = append(envs, kv[1])
				}
			}
		case "WORKDIR":
			workdir = append(workdir, in.args)
		case "COPY":
			if strings.Contains(in.args, "--from="+build.name) && strings.Contains(in.args, "/pad") {
				copied = true
			}
		case "SHELL":
			pipefail = strings.Contains(in.args, "pipefail")
		case "RUN":
			if strings.Contains(in.args, "|") && !pipefail {
				bad("line %d: a RUN with a pipe and no SHELL [... -o pipefail ...] before it", in.line)
			}
		case "ADD":
			bad("line %d: use COPY, not ADD", in.line)
		}
	}
	if !copied {
		bad("the runtime stage does not COPY --from=%s the pad binary", build.name)
	}
	if user == nil {
		bad("no USER in the runtime stage: pad would run as root")
	} else if u, _, _ := strings.Cut(user.args, ":"); u == "root" || u == "0" || !regexp.MustCompile(`^\d+$`).MatchString(u) {
		bad("line %d: USER %s: want a numeric non-root uid (Kubernetes' runAsNonRoot can verify only a numeric one)", user.line, user.args)
	}
	if entry == nil {
		bad("no ENTRYPOINT")
	} else if ep, err := execForm(*entry); err != nil {
		bad("%v", err)
	} else if len(ep) != 1 || path.Base(ep[0]) != "pad" {
		bad("line %d: ENTRYPOINT %q, want [\".../pad\"]", entry.line, ep)
	}
	if cmd == nil {
		bad("no CMD")
	} else if c, err := execForm(*cmd); err != nil || len(c) == 0 {
		bad("no CMD in exec form")
	}
	for _, v := range []string{"/data", "/runs"} {
		if !slices.Contains(volumes, v) {
			bad("no VOLUME %s (have %v)", v, volumes)
		}
	}
	// The relative defaults data/<dataset> and runs must land on the volumes.
	if len(workdir) == 0 || workdir[len(workdir)-1] != "/" {
		bad("WORKDIR %v: want / so that data/ and runs/ are the volumes", workdir)
	}
	for _, l := range []string{"org.opencontainers.image.title", "org.opencontainers.image.source", "org.opencontainers.image.version",
		"org.opencontainers.image.revision", "org.opencontainers.image.base.name"} {
		if !slices.Contains(labels, l) {
			bad("no LABEL %s", l)
		}
	}
	if !slices.Contains(envs, "XDG_CACHE_HOME") {
		bad("no ENV XDG_CACHE_HOME: the kernel cache needs a writable place for any uid")
	}
	return problems
}

func TestDockerfile(t *testing.T) {
	text, err := os.ReadFile("../docker/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range dockerfileProblems(string(text)) {
		t.Error("docker/Dockerfile: " + p)
	}
}

// The checker catches what it is there for.
func TestDockerfileRules(t *testing.T) {
	good, err := os.ReadFile("../docker/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ old, new, want string }{
		{"ARG CUDA_IMAGE=nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04", "ARG CUDA_IMAGE=nvidia/cuda:latest", "pin a tag"},
		{"ARG GO_IMAGE=golang:1.26.8-bookworm", "ARG GO_IMAGE=golang", "pin a tag"},
		{"CGO_ENABLED=0", "CGO_ENABLED=1", "CGO_ENABLED=0"},
		{"USER 10001:10001", "USER root", "non-root"},
		{"USER 10001:10001\n", "", "no USER"},
		{`ENTRYPOINT ["/usr/local/bin/pad"]`, "ENTRYPOINT /usr/local/bin/pad", "exec form"},
		{`VOLUME ["/data", "/runs"]`, `VOLUME ["/data"]`, "VOLUME /runs"},
		{"WORKDIR /\n", "WORKDIR /app\n", "WORKDIR"},
		{"COPY --from=build", "COPY --from=other", "COPY --from=build"},
		{"FROM ${CUDA_IMAGE}", "FROM ${CUDA_IMAGE} AS run\nFROM golang:1.26.8-bookworm", "runtime stage"},
	} {
		text := strings.Replace(string(good), c.old, c.new, 1)
		if text == string(good) {
			t.Fatalf("%q is not in docker/Dockerfile", c.old)
		}
		problems := strings.Join(dockerfileProblems(text), "\n")
		if !strings.Contains(problems, c.want) {
			t.Errorf("with %q → %q: problems %q, want one about %s", c.old, c.new, problems, c.want)
		}
	}
	// USER after ENTRYPOINT.
	moved := strings.Replace(strings.Replace(string(good), "USER 10001:10001\n", "", 1), "CMD [", "USER 10001:10001\nCMD [", 1)
	if p := strings.Join(dockerfileProblems(moved), "\n"); !strings.Contains(p, "ENTRYPOINT before USER") {
		t.Errorf("USER after ENTRYPOINT: %q", p)
	}
}

// execForm decodes the JSON array of an exec-form instruction.
func execForm(in instruction) ([]string, error) {
	var v []string
	if err := json.Unmarshal([]byte(in.args), &v); err != nil {
		return nil, fmt.Errorf("line %d: %s %s: not in exec form (a JSON array)", in.line, in.cmd, in.args)
	}
	return v, nil
}

// ignored reports whether a .dockerignore pattern list excludes p.
func ignored(patterns []string, p string) bool {
	out := false
	for _, pat := range patterns {
		neg := strings.HasPrefix(pat, "!")
		pat = strings.TrimPrefix(strings.TrimPrefix(pat, "!"), "/")
		pat = strings.TrimSuffix(pat, "/")
		match := func(s string) bool { ok, _ := path.Match(pat, s); return ok }
		hit := false
		if rest, ok := strings.CutPrefix(pat, "**/"); ok {
			pat = rest
			for _, part := range []string{p, path.Base(p)} {
				hit = hit || match(part)
			}
		}
		for dir := p; dir != "." && !hit; dir = path.Dir(dir) {
			hit = match(dir) // a pattern naming a directory excludes what it holds
		}
		if hit {
			out = !neg
		}
	}
	return out
}

func TestDockerignore(t *testing.T) {
	text, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(text), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	for _, p := range []string{"bin/pad", "data/cifar10/data_batch_1.bin", "runs/cifar10-pad-s1/checkpoint.safetensors",
		".dev/bench_torch.py", ".git/HEAD", "train/train.test"} {
		if !ignored(patterns, p) {
			t.Errorf("%s is sent to the Docker build", p)
		}
	}
	for _, p := range []string{"go.mod", "go.sum", "cmd/pad/main.go", "configs/cifar10.toml", "dataset/embedded/train-images.gz",
		"kernels/common.cuh", "docker/Dockerfile", "dataset/reader.go"} {
		if ignored(patterns, p) {
			t.Errorf("%s, which the build needs, is excluded", p)
		}
	}
}

// yamlDocs splits a multi-document YAML file.
func yamlDocs(t *testing.T, file string) [][]byte {
	t.Helper()
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(text), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(d, "")) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

// The manifests in deploy/ are valid and agree with each other: the
// volumes the Jobs mount exist, the images are the same, and the paper's
// sweep is the paper's study.
func TestDeployManifests(t *testing.T) {
	claims := map[string]corev1.PersistentVolumeClaim{}
	for _, d := range yamlDocs(t, "../deploy/k8s-volumes.yaml") {
		var pvc corev1.PersistentVolumeClaim
		if err := yaml.UnmarshalStrict(d, &pvc); err != nil {
			t.Fatalf("k8s-volumes.yaml: %v", err)
		}
		if pvc.Kind != "PersistentVolumeClaim" || !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteMany) {
			t.Errorf("%s: kind %s, access %v: want a ReadWriteMany claim", pvc.Name, pvc.Kind, pvc.Spec.AccessModes)
		}
		claims[pvc.Name] = pvc
	}
	images := map[string]bool{}
	jobs := map[string]batchv1.Job{}
	for _, f := range []string{"k8s-fetch-data.yaml", "k8s-report.yaml", "k8s-paper-sweep.yaml"} {
		docs := yamlDocs(t, "../deploy/"+f)
		if len(docs) != 1 {
			t.Fatalf("%s: %d documents", f, len(docs))
		}
		job := parseJob(t, docs[0])
		jobs[f] = job
		pod := job.Spec.Template.Spec
		for _, v := range pod.Volumes {
			if v.PersistentVolumeClaim != nil {
				if _, ok := claims[v.PersistentVolumeClaim.ClaimName]; !ok {
					t.Errorf("%s mounts claim %s, which k8s-volumes.yaml does not define", f, v.PersistentVolumeClaim.ClaimName)
				}
			}
		}
		if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || *sc.RunAsUser != 10001 {
			t.Errorf("%s: pod securityContext %+v, want runAsNonRoot and the image's uid 10001", f, sc)
		}
		for _, c := range pod.Containers {
			images[c.Image] = true
		}
	}
	if len(images) != 1 {
		t.Errorf("the manifests use different images: %v", images)
	}
	if a := jobs["k8s-fetch-data.yaml"].Spec.Template.Spec.Containers[0].Args; !slices.Equal(a[:2], []string{"data", "fetch"}) ||
		!slices.Contains(a, "cifar10") || !slices.Contains(a, "svhn") {
		t.Errorf("fetch args %q", a)
	}
	if a := jobs["k8s-report.yaml"].Spec.Template.Spec.Containers[0].Args; a[0] != "report" || a[1] != "/runs" {
		t.Errorf("report args %q", a)
	}

	// The paper's study: CIFAR-10 and SVHN × the five conditions × 4
	// seeds, 50 epochs, a probe after every epoch.
	job := jobs["k8s-paper-sweep.yaml"]
	s := paperSpec()
	s.DataDir = "/data"
	w := Worker{Spec: s, RunsDir: "/runs", Device: "cuda"}
	k := paperK8s()
	k.Image = job.Spec.Template.Spec.Containers[0].Image
	checkJob(t, job, w, k)
}

func TestDeploySlurm(t *testing.T) {
	text, err := os.ReadFile("../deploy/slurm-paper-sweep.sh")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat("../deploy/slurm-paper-sweep.sh"); err == nil && st.Mode()&0o100 == 0 {
		t.Errorf("deploy/slurm-paper-sweep.sh is not executable")
	}
	if _, err := exec.LookPath("bash"); err == nil {
		if out, err := exec.Command("bash", "-n", "../deploy/slurm-paper-sweep.sh").CombinedOutput(); err != nil {
			t.Errorf("bash -n: %v\n%s", err, out)
		}
	}
	for _, want := range []string{"#SBATCH --array=0-39%8\n", "#SBATCH --gres=gpu:1\n", "#SBATCH --requeue\n", "#SBATCH --open-mode=append\n",
		`"$PAD" sweep run --index "$SLURM_ARRAY_TASK_ID"`, "--datasets cifar10,svhn", "--conditions pad,no-memory-mix,no-rem,no-nrem,wake-only",
		"--seeds 4", "--set train.epochs=50", "--set eval.every=1"} {
		if !bytes.Contains(text, []byte(want)) {
			t.Errorf("the script lacks %q", want)
		}
	}
}
