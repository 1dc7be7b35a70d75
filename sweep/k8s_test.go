package sweep

import (
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// parseJob decodes a Job strictly: a field the API does not have, or a
// value of the wrong type, is an error.
func parseJob(t *testing.T, text []byte) batchv1.Job {
	t.Helper()
	var job batchv1.Job
	if err := yaml.UnmarshalStrict(text, &job); err != nil {
		t.Fatalf("the Job does not decode strictly: %v\n%s", err, text)
	}
	return job
}

func paperK8s() K8s {
	return K8s{Name: "pad-paper", Image: "registry.example.com/pad:1.0", Parallel: 8, Retries: 3, GPUs: 1, CPUs: 8, MemoryGiB: 16,
		DataPVC: "pad-data", RunsPVC: "pad-runs", UID: 10001, Command: "pad sweep ..."}
}

func TestWriteK8s(t *testing.T) {
	s := paperSpec()
	s.DataDir = "/data"
	w := Worker{Spec: s, RunsDir: "/runs", Device: "cuda"}
	var b strings.Builder
	if err := WriteK8s(&b, w, paperK8s()); err != nil {
		t.Fatal(err)
	}
	job := parseJob(t, []byte(b.String()))
	checkJob(t, job, w, paperK8s())
	if !strings.Contains(b.String(), "#   39  svhn-wake-only-s4\n") {
		t.Errorf("the header does not list index 39")
	}

	// Parallel 0 runs all at once; GPUs 0 requests none.
	k := paperK8s()
	k.Parallel, k.GPUs, k.CPUs, k.MemoryGiB, k.Namespace = 0, 0, 0, 0, "science"
	w.Device = "cpu"
	b.Reset()
	if err := WriteK8s(&b, w, k); err != nil {
		t.Fatal(err)
	}
	job = parseJob(t, []byte(b.String()))
	if *job.Spec.Parallelism != 40 || job.Namespace != "science" {
		t.Errorf("parallelism %d, namespace %q", *job.Spec.Parallelism, job.Namespace)
	}
	if res := job.Spec.Template.Spec.Containers[0].Resources; len(res.Limits)+len(res.Requests) != 0 {
		t.Errorf("CPU-only pod has resources %v", res)
	}
}

// checkJob checks the fields that make the Job run the sweep w.
func checkJob(t *testing.T, job batchv1.Job, w Worker, k K8s) {
	t.Helper()
	n := int32(w.Spec.Len())
	spec := job.Spec
	if job.APIVersion != "batch/v1" || job.Kind != "Job" || job.Name != k.Name {
		t.Errorf("%s %s %q", job.APIVersion, job.Kind, job.Name)
	}
	if spec.CompletionMode == nil || *spec.CompletionMode != batchv1.IndexedCompletion {
		t.Errorf("completionMode %v, want Indexed", spec.CompletionMode)
	}
	if spec.Completions == nil || *spec.Completions != n {
		t.Errorf("completions %v, want %d", spec.Completions, n)
	}
	if spec.Parallelism == nil || *spec.Parallelism != int32(min(k.Parallel, int(n))) {
		t.Errorf("parallelism %v, want %d", spec.Parallelism, k.Parallel)
	}
	if spec.BackoffLimitPerIndex == nil || *spec.BackoffLimitPerIndex != int32(k.Retries) {
		t.Errorf("backoffLimitPerIndex %v, want %d", spec.BackoffLimitPerIndex, k.Retries)
	}
	pod := spec.Template.Spec
	// backoffLimitPerIndex and podFailurePolicy require restartPolicy Never.
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy %q", pod.RestartPolicy)
	}
	if spec.PodFailurePolicy == nil || len(spec.PodFailurePolicy.Rules) != 2 {
		t.Fatalf("podFailurePolicy %+v", spec.PodFailurePolicy)
	}
	r0, r1 := spec.PodFailurePolicy.Rules[0], spec.PodFailurePolicy.Rules[1]
	if r0.Action != batchv1.PodFailurePolicyActionIgnore || r0.OnPodConditions[0].Type != corev1.DisruptionTarget {
		t.Errorf("rule 0: %+v", r0)
	}
	if r1.Action != batchv1.PodFailurePolicyActionFailIndex || r1.OnExitCodes == nil || !slices.Equal(r1.OnExitCodes.Values, []int32{2}) ||
		r1.OnExitCodes.ContainerName == nil || *r1.OnExitCodes.ContainerName != "pad" {
		t.Errorf("rule 1: %+v", r1)
	}
	sc := pod.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != int64(k.UID) || *sc.FSGroup != int64(k.UID) {
		t.Errorf("pod securityContext %+v", sc)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Name != "pad" || c.Image != k.Image || len(c.Command) != 0 {
		t.Errorf("container %q image %q command %q (the image's entrypoint is pad)", c.Name, c.Image, c.Command)
	}
	if want := w.Args("$(JOB_COMPLETION_INDEX)"); !slices.Equal(c.Args, want) {
		t.Errorf("args %q\nwant %q", c.Args, want)
	}
	if c.Args[0] != "sweep" || c.Args[1] != "run" || c.Args[2] != "--index" || c.Args[3] != "$(JOB_COMPLETION_INDEX)" {
		t.Errorf("args start %q", c.Args[:4])
	}
	// $(VAR) in args expands only variables of the container's env.
	if len(c.Env) != 1 || c.Env[0].Name != "JOB_COMPLETION_INDEX" || c.Env[0].ValueFrom == nil ||
		c.Env[0].ValueFrom.FieldRef.FieldPath != "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
		t.Errorf("env %+v", c.Env)
	}
	if k.GPUs > 0 {
		q := c.Resources.Limits["nvidia.com/gpu"]
		if q.Value() != int64(k.GPUs) {
			t.Errorf("nvidia.com/gpu limit %v", q.String())
		}
	}
	if k.MemoryGiB > 0 {
		q := c.Resources.Limits[corev1.ResourceMemory]
		if q.Value() != int64(k.MemoryGiB)<<30 {
			t.Errorf("memory limit %v", q.String())
		}
	}
	csc := c.SecurityContext
	if csc == nil || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
		t.Errorf("container securityContext %+v", csc)
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
	}
	if m := mounts["data"]; m.MountPath != w.Spec.DataDir || !m.ReadOnly {
		t.Errorf("data mount %+v, want %s read-only", m, w.Spec.DataDir)
	}
	if m := mounts["runs"]; m.MountPath != w.RunsDir || m.ReadOnly {
		t.Errorf("runs mount %+v, want %s", m, w.RunsDir)
	}
	claims := map[string]string{}
	for _, v := range pod.Volumes {
		if v.PersistentVolumeClaim != nil {
			claims[v.Name] = v.PersistentVolumeClaim.ClaimName
		}
		if _, ok := mounts[v.Name]; !ok {
			t.Errorf("volume %s is not mounted", v.Name)
		}
	}
	if claims["data"] != k.DataPVC || claims["runs"] != k.RunsPVC {
		t.Errorf("claims %v, want data=%s runs=%s", claims, k.DataPVC, k.RunsPVC)
	}
}

func TestK8sCheck(t *testing.T) {
	s := paperSpec()
	s.DataDir = "/data"
	w := Worker{Spec: s, RunsDir: "/runs"}
	for _, c := range []struct {
		edit func(*K8s, *Worker)
		want string
	}{
		{func(k *K8s, _ *Worker) { k.Image = "" }, "--image"},
		{func(k *K8s, _ *Worker) { k.Name = "Pad_Sweep" }, "--name"},
		{func(k *K8s, _ *Worker) { k.Name = strings.Repeat("a", 64) }, "--name"},
		{func(k *K8s, _ *Worker) { k.RunsPVC = "runs volume" }, "--runs-pvc"},
		{func(k *K8s, _ *Worker) { k.GPUs = 2 }, "--gpus 2"},
		{func(k *K8s, _ *Worker) { k.Parallel = -1 }, "--parallel"},
		{func(_ *K8s, w *Worker) { w.RunsDir = "runs" }, "--runs"},
		{func(_ *K8s, w *Worker) { w.Spec.DataDir = "" }, "--data"},
		{func(_ *K8s, w *Worker) { w.RunsDir = "/data/runs" }, "separate"},
	} {
		k, ww := paperK8s(), w
		c.edit(&k, &ww)
		err := WriteK8s(&strings.Builder{}, ww, k)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want one naming %s", err, c.want)
		}
	}
}
