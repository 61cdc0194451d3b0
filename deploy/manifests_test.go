package deploy

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/rewindnet/rewind/authority/agones"
	"github.com/rewindnet/rewind/authority/ops"
)

// render runs `kubectl kustomize dir` and splits its output into
// documents.
func render(t *testing.T, dir string) [][]byte {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl is not on the PATH: it renders the manifests (make deps says how to install it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, kubectl, "kustomize", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
	}
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(out), -1) {
		if strings.TrimSpace(d) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

// strict decodes one document into v, failing on a field v lacks.
func strict(t *testing.T, doc []byte, v any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		t.Fatalf("%T: %v\n%s", v, err, doc)
	}
}

// appendStrict decodes doc strictly into a new T and appends it.
func appendStrict[T any](t *testing.T, list []T, doc []byte) []T {
	t.Helper()
	var v T
	strict(t, doc, &v)
	return append(list, v)
}

// objects are the documents of a Kubernetes overlay, decoded.
type objects struct {
	sets       []appsv1.StatefulSet
	services   []corev1.Service
	configMaps []corev1.ConfigMap
	pdbs       []policyv1.PodDisruptionBudget
	namespaces []corev1.Namespace
}

func decode(t *testing.T, docs [][]byte) objects {
	t.Helper()
	var o objects
	for _, doc := range docs {
		var tm struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatal(err)
		}
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 StatefulSet":
			o.sets = appendStrict(t, o.sets, doc)
		case "v1 Service":
			o.services = appendStrict(t, o.services, doc)
		case "v1 ConfigMap":
			o.configMaps = appendStrict(t, o.configMaps, doc)
		case "policy/v1 PodDisruptionBudget":
			o.pdbs = appendStrict(t, o.pdbs, doc)
		case "v1 Namespace":
			o.namespaces = appendStrict(t, o.namespaces, doc)
		default:
			t.Fatalf("unexpected %s %s", tm.APIVersion, tm.Kind)
		}
	}
	return o
}

// flags returns the authority's flags, from its -h.
func flags(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command(binary(t), "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("authority -h: %v\n%s", err, out)
	}
	fl := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		fl[m[1]] = true
	}
	if !fl["listen"] || !fl["http"] || !fl["cluster-key"] {
		t.Fatalf("no flags found in:\n%s", out)
	}
	return fl
}

// envName is the flag a REWIND_ variable sets ("REWIND_CLUSTER_KEY":
// "cluster-key"), or "" for another variable.
func envFlag(name string) string {
	f, ok := strings.CutPrefix(name, "REWIND_")
	if !ok {
		return ""
	}
	return strings.ReplaceAll(strings.ToLower(f), "_", "-")
}

// checkEnv checks that every REWIND_ variable names a flag and that the
// binary accepts every value (it parses them before -h, and a bad one is
// a usage error): $(VAR) references are resolved as Kubernetes would, with
// the downward API's values given in fake, and Secrets stand in for by a
// 32-byte value.
func checkEnv(t *testing.T, what string, env []corev1.EnvVar, fromMaps map[string]string, fake map[string]string) {
	t.Helper()
	fl := flags(t)
	vals := map[string]string{}
	for k, v := range fromMaps {
		vals[k] = v
	}
	ref := regexp.MustCompile(`\$\(([A-Z_]+)\)`)
	for _, e := range env {
		switch {
		case e.ValueFrom == nil:
			vals[e.Name] = ref.ReplaceAllStringFunc(e.Value, func(s string) string {
				v, ok := vals[s[2:len(s)-1]]
				if !ok {
					t.Errorf("%s: %s refers to %s, not defined before it", what, e.Name, s)
				}
				return v
			})
		case e.ValueFrom.FieldRef != nil:
			v, ok := fake[e.ValueFrom.FieldRef.FieldPath]
			if !ok {
				t.Fatalf("%s: no stand-in for %s", what, e.ValueFrom.FieldRef.FieldPath)
			}
			vals[e.Name] = v
		case e.ValueFrom.SecretKeyRef != nil:
			vals[e.Name] = "a 32-byte stand-in for a secret."
		default:
			t.Errorf("%s: %s comes from an unexpected source", what, e.Name)
		}
	}
	var environ []string
	for k, v := range vals {
		if f := envFlag(k); f != "" && !fl[f] {
			t.Errorf("%s: %s names no flag (-%s)", what, k, f)
		}
		environ = append(environ, k+"="+v)
	}
	cmd := exec.Command(binary(t), "-h")
	cmd.Env = environ
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s: the authority refuses its environment: %v\n%s", what, err, out)
	}
}

func port(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return int32(n)
}

// containerPort finds the container's port named by a probe or Service
// (a name or a number).
func containerPort(c *corev1.Container, p string) (corev1.ContainerPort, bool) {
	for _, cp := range c.Ports {
		if cp.Name == p || strconv.Itoa(int(cp.ContainerPort)) == p {
			return cp, true
		}
	}
	return corev1.ContainerPort{}, false
}

// served reports whether the authority's endpoint serves path (anything
// but a 404).
func served(path string) bool {
	rec := httptest.NewRecorder()
	ops.New(ops.Config{StatusTimeout: time.Second}).Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code != http.StatusNotFound
}

func TestKubernetesManifests(t *testing.T) {
	for _, tc := range []struct {
		overlay  string
		replicas int32
		cluster  bool
	}{
		{"single", 1, false},
		{"cluster", 3, true},
	} {
		t.Run(tc.overlay, func(t *testing.T) {
			o := decode(t, render(t, "kubernetes/overlays/"+tc.overlay))
			if len(o.sets) != 1 || len(o.configMaps) != 1 || len(o.pdbs) != 1 || len(o.services) != 2 || len(o.namespaces) != 1 {
				t.Fatalf("%d StatefulSets, %d ConfigMaps, %d PDBs, %d Services, %d Namespaces",
					len(o.sets), len(o.configMaps), len(o.pdbs), len(o.services), len(o.namespaces))
			}
			ss, cm, pdb := &o.sets[0], o.configMaps[0].Data, &o.pdbs[0]
			for _, obj := range []string{ss.Namespace, o.configMaps[0].Namespace, pdb.Namespace, o.services[0].Namespace, o.services[1].Namespace} {
				if obj != o.namespaces[0].Name {
					t.Errorf("an object in namespace %q, not %q", obj, o.namespaces[0].Name)
				}
			}
			if *ss.Spec.Replicas != tc.replicas {
				t.Errorf("replicas %d, want %d", *ss.Spec.Replicas, tc.replicas)
			}
			spec := &ss.Spec.Template.Spec
			if len(spec.Containers) != 1 {
				t.Fatalf("%d containers", len(spec.Containers))
			}
			c := &spec.Containers[0]
			labels := ss.Spec.Template.Labels
			for k, v := range ss.Spec.Selector.MatchLabels {
				if labels[k] != v {
					t.Errorf("the selector's %s=%s is not on the pods", k, v)
				}
			}

			// The environment: flags that exist, values the binary takes.
			if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef == nil || c.EnvFrom[0].ConfigMapRef.Name != o.configMaps[0].Name {
				t.Errorf("the container's envFrom %+v is not the ConfigMap %s", c.EnvFrom, o.configMaps[0].Name)
			}
			checkEnv(t, ss.Name, c.Env, cm, map[string]string{"metadata.name": ss.Name + "-1", "status.podIP": "10.1.2.3"})
			env := maps(cm, c.Env)

			// Ports and protocols match the flags.
			game, ok := containerPort(c, "game")
			if !ok || game.Protocol != corev1.ProtocolUDP || game.ContainerPort != port(t, cm["REWIND_LISTEN"]) {
				t.Errorf("game port %+v, -listen %s", game, cm["REWIND_LISTEN"])
			}
			httpPort, ok := containerPort(c, "http")
			if !ok || httpPort.Protocol != corev1.ProtocolTCP || httpPort.ContainerPort != port(t, cm["REWIND_HTTP"]) {
				t.Errorf("http port %+v, -http %s", httpPort, cm["REWIND_HTTP"])
			}
			if ss.Spec.Template.Annotations["prometheus.io/port"] != strconv.Itoa(int(httpPort.ContainerPort)) {
				t.Errorf("prometheus.io/port %q", ss.Spec.Template.Annotations["prometheus.io/port"])
			}

			// Probes point at paths the endpoint serves, on its port.
			for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
				want := map[string]string{"readiness": "/readyz", "liveness": "/healthz"}[name]
				if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want || !served(p.HTTPGet.Path) {
					t.Errorf("%s probe %+v: want an HTTP GET of %s", name, p, want)
					continue
				}
				if cp, ok := containerPort(c, p.HTTPGet.Port.String()); !ok || cp.ContainerPort != httpPort.ContainerPort {
					t.Errorf("%s probe on port %s, not the http port", name, p.HTTPGet.Port.String())
				}
			}

			// The archive on a volume per pod, where -data says.
			if len(ss.Spec.VolumeClaimTemplates) != 1 {
				t.Fatalf("%d volume claim templates", len(ss.Spec.VolumeClaimTemplates))
			}
			vct := ss.Spec.VolumeClaimTemplates[0]
			if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
				return m.Name == vct.Name && m.MountPath == cm["REWIND_DATA"]
			}) {
				t.Errorf("no mount of %s at -data %s: %+v", vct.Name, cm["REWIND_DATA"], c.VolumeMounts)
			}
			if _, ok := vct.Spec.Resources.Requests[corev1.ResourceStorage]; !ok {
				t.Errorf("the volume claim requests no storage")
			}

			// Runs as the image's unprivileged user, with resources asked.
			sc := spec.SecurityContext
			if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
				t.Errorf("pod security context %+v: want a non-root user", sc)
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
				t.Errorf("no CPU or memory requested: %+v", c.Resources.Requests)
			}

			// The gossip Service is headless, lists pods not yet ready,
			// and governs the StatefulSet; the game Service is UDP to the
			// game port.
			var gossip, gameSvc *corev1.Service
			for i := range o.services {
				if o.services[i].Name == ss.Spec.ServiceName {
					gossip = &o.services[i]
				} else {
					gameSvc = &o.services[i]
				}
			}
			if gossip == nil || gossip.Spec.ClusterIP != corev1.ClusterIPNone || !gossip.Spec.PublishNotReadyAddresses {
				t.Fatalf("the StatefulSet's Service %q: %+v, want headless with publishNotReadyAddresses", ss.Spec.ServiceName, gossip)
			}
			for _, svc := range []*corev1.Service{gossip, gameSvc} {
				for k, v := range svc.Spec.Selector {
					if labels[k] != v {
						t.Errorf("Service %s selects %s=%s, not on the pods", svc.Name, k, v)
					}
				}
			}
			if len(gameSvc.Spec.Ports) != 1 || gameSvc.Spec.Ports[0].Protocol != corev1.ProtocolUDP {
				t.Fatalf("game Service ports %+v: want one, UDP", gameSvc.Spec.Ports)
			}
			if cp, ok := containerPort(c, gameSvc.Spec.Ports[0].TargetPort.String()); !ok || cp.ContainerPort != game.ContainerPort {
				t.Errorf("the game Service targets %s, not the game port", gameSvc.Spec.Ports[0].TargetPort.String())
			}

			// One pod may go at a time; the others keep a quorum.
			if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
				t.Errorf("PDB maxUnavailable %v, want 1", pdb.Spec.MaxUnavailable)
			}
			if pdb.Spec.Selector == nil || len(pdb.Spec.Selector.MatchLabels) == 0 {
				t.Fatalf("the PDB selects no pod")
			}
			for k, v := range pdb.Spec.Selector.MatchLabels {
				if labels[k] != v {
					t.Errorf("the PDB selects %s=%s, not on the pods", k, v)
				}
			}

			if !tc.cluster {
				if env["REWIND_GOSSIP"] != "" || env["REWIND_CLUSTER_SIZE"] != "" {
					t.Errorf("a single authority with cluster settings: %v", env)
				}
				return
			}
			// The cluster: the size is the replica count; members gossip
			// on the port the headless Service publishes, over TCP and
			// UDP, and join through its name; each has its own node id.
			if size, _ := strconv.Atoi(env["REWIND_CLUSTER_SIZE"]); int32(size) != *ss.Spec.Replicas {
				t.Errorf("-cluster-size %s, %d replicas", env["REWIND_CLUSTER_SIZE"], *ss.Spec.Replicas)
			}
			if int32(pdb.Spec.MaxUnavailable.IntValue()) > *ss.Spec.Replicas-(*ss.Spec.Replicas/2+1) {
				t.Errorf("the PDB lets the cluster lose its quorum")
			}
			gp := port(t, strings.ReplaceAll(env["REWIND_GOSSIP"], "$(POD_IP)", "10.1.2.3"))
			for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP} {
				if !slices.ContainsFunc(gossip.Spec.Ports, func(p corev1.ServicePort) bool {
					cp, ok := containerPort(c, p.TargetPort.String())
					return p.Protocol == proto && p.Port == gp && ok && cp.ContainerPort == gp && cp.Protocol == proto
				}) {
					t.Errorf("the headless Service does not publish gossip port %d/%s", gp, proto)
				}
			}
			join := env["REWIND_JOIN"]
			if host, p, err := net.SplitHostPort(join); err != nil || host != gossip.Name || p != strconv.Itoa(int(gp)) {
				t.Errorf("-join %q: want %s:%d", join, gossip.Name, gp)
			}
			if env["REWIND_NODE_ID_FROM_NAME"] != "$(POD_NAME)" || env["REWIND_ADVERTISE"] != fmt.Sprintf("$(POD_IP):%d", game.ContainerPort) {
				t.Errorf("node id from %q, advertise %q", env["REWIND_NODE_ID_FROM_NAME"], env["REWIND_ADVERTISE"])
			}
			if env["REWIND_JOIN_TIMEOUT"] == "" || ss.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
				t.Errorf("members must start together and wait for each other: policy %s, -join-timeout %q",
					ss.Spec.PodManagementPolicy, env["REWIND_JOIN_TIMEOUT"])
			}
		})
	}
}

// maps merges the ConfigMap's data and the container's literal values.
func maps(cm map[string]string, env []corev1.EnvVar) map[string]string {
	out := map[string]string{}
	for k, v := range cm {
		out[k] = v
	}
	for _, e := range env {
		if e.ValueFrom == nil {
			out[e.Name] = e.Value
		} else {
			out[e.Name] = "(from " + e.Name + "'s source)"
		}
	}
	return out
}

// fleet mirrors the fields of agones.dev/v1 Fleet the manifest uses (the
// Agones module is not a dependency); the pod template is Kubernetes'
// own type.
type fleet struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Replicas   int32  `json:"replicas"`
		Scheduling string `json:"scheduling"`
		Strategy   struct {
			Type string `json:"type"`
		} `json:"strategy"`
		Template struct {
			Metadata struct {
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
			Spec struct {
				Ports []struct {
					Name          string          `json:"name"`
					PortPolicy    string          `json:"portPolicy"`
					ContainerPort int32           `json:"containerPort"`
					Protocol      corev1.Protocol `json:"protocol"`
				} `json:"ports"`
				Health struct {
					Disabled            bool  `json:"disabled"`
					InitialDelaySeconds int32 `json:"initialDelaySeconds"`
					PeriodSeconds       int32 `json:"periodSeconds"`
					FailureThreshold    int32 `json:"failureThreshold"`
				} `json:"health"`
				Template corev1.PodTemplateSpec `json:"template"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

func TestAgonesFleet(t *testing.T) {
	docs := render(t, "agones")
	if len(docs) != 1 {
		t.Fatalf("%d documents, want the Fleet", len(docs))
	}
	var f fleet
	strict(t, docs[0], &f)
	if f.APIVersion != "agones.dev/v1" || f.Kind != "Fleet" || f.Spec.Replicas < 1 {
		t.Fatalf("%s %s with %d replicas", f.APIVersion, f.Kind, f.Spec.Replicas)
	}
	gs := &f.Spec.Template.Spec
	pod := &gs.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := &pod.Containers[0]
	checkEnv(t, f.Metadata.Name, c.Env, nil, nil)
	env := maps(nil, c.Env)
	if _, ok := env["AGONES_SDK_HTTP_PORT"]; ok {
		t.Errorf("the Fleet sets AGONES_SDK_HTTP_PORT, which Agones sets")
	}
	if len(gs.Ports) != 1 || gs.Ports[0].Protocol != corev1.ProtocolUDP || gs.Ports[0].ContainerPort != port(t, env["REWIND_LISTEN"]) ||
		gs.Ports[0].PortPolicy != "Dynamic" {
		t.Errorf("game server ports %+v, -listen %s", gs.Ports, env["REWIND_LISTEN"])
	}
	// Health pings every agones.HealthEvery: the period must leave room.
	h := gs.Health
	if h.Disabled || time.Duration(h.PeriodSeconds)*time.Second < 2*agones.HealthEvery || h.FailureThreshold < 1 {
		t.Errorf("health %+v: want checks at least twice as long as the %v pings", h, agones.HealthEvery)
	}
	if d, err := time.ParseDuration(env["REWIND_END_WHEN_EMPTY"]); err != nil || d <= 0 {
		t.Errorf("-end-when-empty %q: a one-match server must end its match", env["REWIND_END_WHEN_EMPTY"])
	}
	if env["REWIND_DATA"] != "" {
		t.Errorf("a one-match server with an archive: -data %q", env["REWIND_DATA"])
	}
	for k, v := range f.Spec.Template.Metadata.Labels {
		if gs.Template.Labels[k] != v {
			t.Errorf("label %s=%s not on the pods", k, v)
		}
	}
	if sc := c.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("container security context %+v: want a non-root user", sc)
	}
	if httpPort, ok := containerPort(c, "http"); !ok || httpPort.ContainerPort != port(t, env["REWIND_HTTP"]) {
		t.Errorf("http port %+v, -http %s", httpPort, env["REWIND_HTTP"])
	}
}
