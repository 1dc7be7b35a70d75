package sweep

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
)

// K8s describes the Kubernetes Job WriteK8s writes.
type K8s struct {
	// Name is the Job's name (a DNS-1123 label of at most 63 characters).
	Name string
	// Namespace, when set, is written into the Job's metadata.
	Namespace string
	// Image is the container image holding pad as its entrypoint (see
	// docker/Dockerfile).
	Image string
	// Parallel is the number of pods running at once (spec.parallelism);
	// 0 runs them all, as far as the cluster's GPUs allow.
	Parallel int
	// Retries is the number of times a failed index is retried
	// (spec.backoffLimitPerIndex); each retry resumes from the run's
	// checkpoint.
	Retries int
	// GPUs is the number of GPUs per pod, 1, or 0 for CPU-only pods.
	GPUs int
	// CPUs and MemoryGiB are the pod's requests (0: none); memory is also
	// its limit.
	CPUs, MemoryGiB int
	// DataPVC and RunsPVC name the PersistentVolumeClaims mounted at the
	// worker's data directory (read-only) and runs directory. The runs
	// claim must be ReadWriteMany when pods may land on several nodes.
	DataPVC, RunsPVC string
	// UID is the user and group the pods run as (the image's pad user).
	UID int
	// Command is the command line that generated the file, written into
	// its header.
	Command string
}

var dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// dns1123Subdomain: lowercase alphanumerics, '-' and '.', at most 253.
var dns1123Subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// Check validates the options for a worker w; the messages name the flag.
func (k K8s) Check(w Worker) error {
	if len(k.Name) > 63 || !dns1123Label.MatchString(k.Name) {
		return fmt.Errorf("--name %q: a Kubernetes Job name must be at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit", k.Name)
	}
	if k.Namespace != "" && (len(k.Namespace) > 63 || !dns1123Label.MatchString(k.Namespace)) {
		return fmt.Errorf("--namespace %q: not a valid namespace name", k.Namespace)
	}
	if k.Image == "" {
		return fmt.Errorf("--emit k8s needs --image: the image you built from docker/Dockerfile and pushed, e.g. registry.example.com/pad:1.0")
	}
	if strings.ContainsAny(k.Image, " \t\n\"'") {
		return fmt.Errorf("--image %q: an image reference has no spaces or quotes", k.Image)
	}
	for _, c := range []struct{ flag, name string }{{"--data-pvc", k.DataPVC}, {"--runs-pvc", k.RunsPVC}} {
		if len(c.name) > 253 || !dns1123Subdomain.MatchString(c.name) {
			return fmt.Errorf("%s %q: not a valid PersistentVolumeClaim name (lowercase letters, digits, '-' and '.')", c.flag, c.name)
		}
	}
	if k.GPUs < 0 || k.GPUs > 1 {
		return fmt.Errorf("--gpus %d: a run uses one GPU; give 1 (the default) or 0 for CPU-only pods", k.GPUs)
	}
	if k.Parallel < 0 {
		return fmt.Errorf("--parallel %d: want 0 (all at once) or more", k.Parallel)
	}
	if k.Retries < 0 {
		return fmt.Errorf("--retries %d: want 0 or more", k.Retries)
	}
	if !path.IsAbs(w.RunsDir) {
		return fmt.Errorf("--runs %q: for Kubernetes, the absolute path the runs volume is mounted at, e.g. /runs", w.RunsDir)
	}
	if !path.IsAbs(w.Spec.DataDir) {
		return fmt.Errorf("--data %q: for Kubernetes, the absolute path the data volume is mounted at, e.g. /data", w.Spec.DataDir)
	}
	if mountsOverlap(w.RunsDir, w.Spec.DataDir) {
		return fmt.Errorf("--runs %s and --data %s: the two volumes need separate mount paths", w.RunsDir, w.Spec.DataDir)
	}
	return nil
}

func mountsOverlap(a, b string) bool {
	a, b = path.Clean(a)+"/", path.Clean(b)+"/"
	return strings.HasPrefix(a, b) || strings.HasPrefix(b, a)
}

// yq quotes s as a YAML double-quoted scalar (JSON's string syntax, which
// YAML shares).
func yq(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// WriteK8s writes one Kubernetes Indexed Job (batch/v1) running the sweep:
// completions = the number of runs, one pod per index, each calling `pad
// sweep run --index $(JOB_COMPLETION_INDEX)` with the sweep's flags.
//
// Pods restart with restartPolicy Never and spec.backoffLimitPerIndex
// retries per index; a retried pod finds its run's checkpoint on the runs
// volume and resumes (a finished run exits 0 at once). The pod failure
// policy retries evicted or preempted pods without counting them (pad
// checkpoints on SIGTERM) and gives up on an index at once on exit code 2,
// a usage or config error that a retry would repeat.
func WriteK8s(out io.Writer, w Worker, k K8s) error {
	if err := k.Check(w); err != nil {
		return err
	}
	n := w.Spec.Len()
	par := k.Parallel
	if par == 0 || par > n {
		par = n
	}
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }

	writeK8sHeader(&b, w, k, par)
	p("apiVersion: batch/v1\n")
	p("kind: Job\n")
	p("metadata:\n")
	p("  name: %s\n", k.Name)
	if k.Namespace != "" {
		p("  namespace: %s\n", k.Namespace)
	}
	labels := func(indent string) {
		p("%slabels:\n", indent)
		p("%s  app.kubernetes.io/name: pad\n", indent)
		p("%s  app.kubernetes.io/component: sweep\n", indent)
		p("%s  app.kubernetes.io/instance: %s\n", indent, k.Name)
	}
	labels("  ")
	p("spec:\n")
	p("  completionMode: Indexed\n")
	p("  completions: %d\n", n)
	p("  parallelism: %d\n", par)
	p("  backoffLimitPerIndex: %d # retries per run; each resumes from the run's checkpoint\n", k.Retries)
	p("  podFailurePolicy:\n")
	p("    rules:\n")
	p("    - action: Ignore # evicted or preempted: retry without counting it (pad checkpoints on SIGTERM)\n")
	p("      onPodConditions:\n")
	p("      - type: DisruptionTarget\n")
	p("    - action: FailIndex # exit code 2: a usage or config error, which a retry would repeat\n")
	p("      onExitCodes:\n")
	p("        containerName: pad\n")
	p("        operator: In\n")
	p("        values: [2]\n")
	p("  template:\n")
	p("    metadata:\n")
	labels("      ")
	p("    spec:\n")
	p("      restartPolicy: Never\n")
	p("      terminationGracePeriodSeconds: 300 # SIGTERM: pad finishes the iteration (or probe) and checkpoints\n")
	p("      securityContext:\n")
	p("        runAsNonRoot: true\n")
	p("        runAsUser: %d\n", k.UID)
	p("        runAsGroup: %d\n", k.UID)
	p("        fsGroup: %d # makes the volumes writable for the pad user\n", k.UID)
	p("        seccompProfile:\n")
	p("          type: RuntimeDefault\n")
	p("      containers:\n")
	writeK8sContainer(&b, w, k)
	p("      volumes:\n")
	p("      - name: data\n")
	p("        persistentVolumeClaim:\n")
	p("          claimName: %s\n", k.DataPVC)
	p("          readOnly: true\n")
	p("      - name: runs\n")
	p("        persistentVolumeClaim:\n")
	p("          claimName: %s\n", k.RunsPVC)
	p("      - name: tmp\n")
	p("        emptyDir: {}\n")
	_, err := out.Write(b.Bytes())
	return err
}

// writeK8sHeader writes the comment block that opens the Job's file: what
// it runs, the index → run table, what the cluster needs, and the kubectl
// commands to start and follow it, par pods at a time. Whoever applies
// the file may not have the command that generated it at hand, so the
// file says how to use it.
func writeK8sHeader(b *bytes.Buffer, w Worker, k K8s, par int) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	s := w.Spec
	writeIntro(b, "Kubernetes", s, k.Command)
	writeRunTable(b, s, "# ")
	p("#\n")
	p("# Needs: the NVIDIA device plugin (resource nvidia.com/gpu); a PersistentVolumeClaim\n")
	p("# %q holding one folder per dataset (pad data fetch, see deploy/k8s-fetch-data.yaml),\n", k.DataPVC)
	p("# mounted read-only at %s; and a ReadWriteMany claim %q for the run directories,\n", s.DataDir, k.RunsPVC)
	p("# mounted at %s (see deploy/k8s-volumes.yaml).\n", w.RunsDir)
	p("#   kubectl apply -f FILE   start: one pod per run index, %d at a time\n", par)
	p("#   kubectl describe job %s   progress: completed and failed indexes\n", k.Name)
	p("#   kubectl logs -f -l job-name=%s --max-log-requests %d   follow the pods\n", k.Name, par)
	p("# A pod that fails or is evicted is replaced by one with the same index, which\n")
	p("# resumes from %s/<run>/checkpoint.safetensors. When the Job is done, aggregate\n", w.RunsDir)
	p("# with pad report %s in a pod that mounts the runs (deploy/k8s-report.yaml).\n", w.RunsDir)
}

// writeK8sContainer writes the pod's one container, pad, as an item of
// the pod spec's containers list: the worker's arguments with the
// Job's completion index for the run index, its resources, a locked-down
// security context, and where the data, runs and tmp volumes are mounted.
func writeK8sContainer(b *bytes.Buffer, w Worker, k K8s) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("      - name: pad\n")
	p("        image: %s\n", yq(k.Image))
	p("        args:\n")
	for _, a := range w.Args("$(JOB_COMPLETION_INDEX)") {
		p("        - %s\n", yq(a))
	}
	p("        env:\n")
	p("        - name: JOB_COMPLETION_INDEX # set by the Job controller too; declared for $(...) in args\n")
	p("          valueFrom:\n")
	p("            fieldRef:\n")
	p("              fieldPath: metadata.annotations['batch.kubernetes.io/job-completion-index']\n")
	writeK8sResources(b, k)
	p("        securityContext:\n")
	p("          allowPrivilegeEscalation: false\n")
	p("          readOnlyRootFilesystem: true\n")
	p("          capabilities:\n")
	p("            drop: [ALL]\n")
	p("        volumeMounts:\n")
	p("        - name: data\n")
	p("          mountPath: %s\n", yq(w.Spec.DataDir))
	p("          readOnly: true\n")
	p("        - name: runs\n")
	p("          mountPath: %s\n", yq(w.RunsDir))
	p("        - name: tmp # kernel cache (XDG_CACHE_HOME) and temporary files\n")
	p("          mountPath: /tmp\n")
}

// writeK8sResources writes the container's resources: the CPUs and
// memory requested, and as limits the GPUs (Kubernetes takes
// nvidia.com/gpu as a limit) and the memory again (see K8s.MemoryGiB).
// With none of them it writes an empty map, since `resources:` alone
// would be null.
func writeK8sResources(b *bytes.Buffer, k K8s) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("        resources:\n")
	if k.CPUs > 0 || k.MemoryGiB > 0 {
		p("          requests:\n")
		if k.CPUs > 0 {
			p("            cpu: %s\n", yq(fmt.Sprint(k.CPUs)))
		}
		if k.MemoryGiB > 0 {
			p("            memory: %dGi\n", k.MemoryGiB)
		}
	}
	if k.GPUs > 0 || k.MemoryGiB > 0 {
		p("          limits:\n")
		if k.GPUs > 0 {
			p("            nvidia.com/gpu: %s\n", yq(fmt.Sprint(k.GPUs)))
		}
		if k.MemoryGiB > 0 {
			p("            memory: %dGi\n", k.MemoryGiB)
		}
	}
	if k.CPUs == 0 && k.MemoryGiB == 0 && k.GPUs == 0 {
		p("          {}\n")
	}
}
