{{/*
Shared pieces of the four CronJobs. Each job's template builds its env, volumes and mounts and hands
them to "cwj.cronjob", so the security context, pod failure policy and scheduling are written once.
*/}}

{{/* The fixed non-root identity the image runs as (Dockerfile: USER 10001:10001). */}}
{{- define "cwj.uid" -}}10001{{- end -}}

{{- define "cwj.prefix" -}}
{{- default .Release.Name .Values.fullnameOverride | trimSuffix "-" -}}
{{- end -}}

{{/* <prefix>-<job>; args: (list $ "fic-reconcile"). A CronJob name over 52 characters cannot create Jobs. */}}
{{- define "cwj.name" -}}
{{- $name := printf "%s-%s" (include "cwj.prefix" (index . 0)) (index . 1) -}}
{{- if gt (len $name) 52 -}}
{{- fail (printf "name %q is %d characters; CronJob names must be at most 52: shorten the release name or set fullnameOverride" $name (len $name)) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{/* args: (list $ "fic-reconcile") */}}
{{- define "cwj.labels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ $root.Chart.Name }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/component: {{ index . 1 }}
app.kubernetes.io/part-of: coder-wi-jobs
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version }}
{{- with $root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Always by digest: a tag can be moved to other content. The schema requires image.digest once a job is on. */}}
{{- define "cwj.image" -}}
{{- $img := .Values.image -}}
{{- if not $img.digest -}}
{{- fail "image.digest is required: the sha256:... digest of the image you pushed (the pods run image.repository@image.digest)" -}}
{{- end -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- end -}}

{{/*
jobDefaults overlaid with the job's own keys, as JSON (use with fromJson). A key the job sets wins even
when it is 0 or false (sprig's merge would drop those); a key set to null falls back to the default.
*/}}
{{- define "cwj.config" -}}
{{- $root := index . 0 -}}
{{- $cfg := deepCopy $root.Values.jobDefaults -}}
{{- range $key, $value := index . 1 -}}
{{- if not (kindIs "invalid" $value) -}}
{{- $_ := set $cfg $key $value -}}
{{- end -}}
{{- end -}}
{{- toJson $cfg -}}
{{- end -}}

{{/* args: (list $ "fic-reconcile" $job) */}}
{{- define "cwj.serviceAccountName" -}}
{{- $sa := (index . 2).serviceAccount | default dict -}}
{{- default (include "cwj.name" (list (index . 0) (index . 1))) $sa.name -}}
{{- end -}}

{{/*
The job's ServiceAccount. No token is mounted by default: each pod states whether it needs the API.
args: dict root, job (name), values (the job's block), annotations (extra, e.g. Workload Identity)
*/}}
{{- define "cwj.serviceAccount" -}}
{{- $sa := .values.serviceAccount | default dict -}}
{{- if $sa.create }}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "cwj.serviceAccountName" (list .root .job .values) }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "cwj.labels" (list .root .job) | nindent 4 }}
  {{- $annotations := merge (dict) (.annotations | default dict) ($sa.annotations | default dict) }}
  {{- with $annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: false
{{- end }}
{{- end -}}

{{/* env entries every job reads (lib/settings.py RunOptions) plus the shared Pushgateway. arg: dict root, cfg */}}
{{- define "cwj.commonEnv" -}}
- name: CWJ_DRY_RUN
  value: {{ .cfg.dryRun | toString | quote }}
- name: CWJ_LOG_LEVEL
  value: {{ .cfg.logLevel | quote }}
- name: CWJ_OUTPUT
  value: {{ .cfg.output | quote }}
{{- with .root.Values.pushgatewayUrl }}
- name: CWJ_PUSHGATEWAY_URL
  value: {{ . | quote }}
- name: CWJ_CLUSTER
  value: {{ required "clusterName is required with pushgatewayUrl: every pushed metric is grouped by it, and two clusters pushing under one name overwrite each other (e.g. --set clusterName=aks-prod-westeurope)" $.root.Values.clusterName | quote }}
{{- end }}
{{- end -}}

{{/*
One CronJob. args: dict
  root, job (console script and name suffix), values (the job's block), env (list of EnvVar),
  volumes, mounts (lists), automountToken (bool: only a job that calls the Kubernetes API gets one),
  podLabels (extra labels, e.g. Workload Identity), checksum (of the job's ConfigMap, or ""),
  checkovSkips (optional list of "CKV_ID=one-line reason" for a checkov check this job cannot pass)
*/}}
{{- define "cwj.cronjob" -}}
{{- $root := .root -}}
{{- $cfg := include "cwj.config" (list $root .values) | fromJson -}}
{{- $labels := include "cwj.labels" (list $root .job) }}
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {{ include "cwj.name" (list $root .job) }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- $labels | nindent 4 }}
  {{- with .checkovSkips }}
  # Checks this CronJob fails on purpose, each with its reason (checkov reads checkov.io/skipN: ID=reason).
  annotations:
    {{- range $i, $skip := . }}
    checkov.io/skip{{ add1 $i }}: {{ $skip | quote }}
    {{- end }}
  {{- end }}
spec:
  schedule: {{ $cfg.schedule | quote }}
  timeZone: {{ $cfg.timeZone | quote }}
  suspend: {{ $cfg.suspend }}
  # Two runs of one job never overlap: they would race on the same writes (a late run is skipped, not queued).
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: {{ $cfg.startingDeadlineSeconds | int }}
  successfulJobsHistoryLimit: {{ $cfg.successfulJobsHistoryLimit | int }}
  failedJobsHistoryLimit: {{ $cfg.failedJobsHistoryLimit | int }}
  jobTemplate:
    metadata:
      labels:
        {{- $labels | nindent 8 }}
    spec:
      backoffLimit: {{ $cfg.backoffLimit | int }}
      activeDeadlineSeconds: {{ $cfg.activeDeadlineSeconds | int }}
      ttlSecondsAfterFinished: {{ $cfg.ttlSecondsAfterFinished | int }}
      podFailurePolicy:
        rules:
          # A drained or preempted node is not the job's failure: run again, without using up backoffLimit.
          - action: Ignore
            onPodConditions:
              - type: DisruptionTarget
                status: "True"
          # 2 = bad configuration, 3 = the safety guard refused the plan: a retry cannot change either.
          - action: FailJob
            onExitCodes:
              containerName: job
              operator: In
              values: [2, 3]
      template:
        metadata:
          labels:
            {{- $labels | nindent 12 }}
            {{- with .podLabels }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
            {{- with $cfg.podLabels }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- if or .checksum $cfg.podAnnotations }}
          annotations:
            {{- with .checksum }}
            # Changes when the job's ConfigMap changes, so `helm diff` and the CronJob show it.
            checksum/config: {{ . }}
            {{- end }}
            {{- with $cfg.podAnnotations }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- end }}
        spec:
          serviceAccountName: {{ include "cwj.serviceAccountName" (list $root .job .values) }}
          automountServiceAccountToken: {{ .automountToken }}
          restartPolicy: Never
          enableServiceLinks: false
          {{- with $root.Values.imagePullSecrets }}
          imagePullSecrets:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $cfg.priorityClassName }}
          priorityClassName: {{ . }}
          {{- end }}
          securityContext:
            runAsNonRoot: true
            runAsUser: {{ include "cwj.uid" . }}
            runAsGroup: {{ include "cwj.uid" . }}
            fsGroup: {{ include "cwj.uid" . }}
            seccompProfile:
              type: RuntimeDefault
          {{- with $cfg.nodeSelector }}
          nodeSelector:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $cfg.tolerations }}
          tolerations:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $cfg.affinity }}
          affinity:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          containers:
            - name: job
              image: {{ include "cwj.image" $root }}
              imagePullPolicy: {{ $root.Values.image.pullPolicy }}
              command: [{{ .job | quote }}]
              env:
                {{- include "cwj.commonEnv" (dict "root" $root "cfg" $cfg) | nindent 16 }}
                {{- with .env }}
                {{- toYaml . | nindent 16 }}
                {{- end }}
                {{- with $cfg.extraEnv }}
                {{- toYaml . | nindent 16 }}
                {{- end }}
              resources:
                {{- toYaml $cfg.resources | nindent 16 }}
              securityContext:
                runAsNonRoot: true
                runAsUser: {{ include "cwj.uid" . }}
                runAsGroup: {{ include "cwj.uid" . }}
                allowPrivilegeEscalation: false
                privileged: false
                readOnlyRootFilesystem: true
                capabilities:
                  drop: [ALL]
                seccompProfile:
                  type: RuntimeDefault
              volumeMounts:
                # The root filesystem is read-only; Python and the SDKs get a small scratch /tmp.
                - name: tmp
                  mountPath: /tmp
                {{- with .mounts }}
                {{- toYaml . | nindent 16 }}
                {{- end }}
                {{- with $cfg.extraVolumeMounts }}
                {{- toYaml . | nindent 16 }}
                {{- end }}
          volumes:
            - name: tmp
              emptyDir:
                sizeLimit: 64Mi
            {{- with .volumes }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
            {{- with $cfg.extraVolumes }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
{{- end -}}

{{/* A projected service-account token for Vault's Kubernetes auth: audience vault.audience, no API access. */}}
{{- define "cwj.vaultTokenVolume" -}}
name: vault-token
projected:
  defaultMode: 0440
  sources:
    - serviceAccountToken:
        path: token
        audience: {{ .Values.vault.audience | quote }}
        expirationSeconds: {{ .Values.vault.tokenExpirationSeconds | int }}
{{- end -}}

{{/* A file from an existing Secret, by name only. args: dict name (volume), secret (name), key */}}
{{- define "cwj.secretFileVolume" -}}
name: {{ .name }}
secret:
  secretName: {{ .secret }}
  defaultMode: 0440
  items:
    - key: {{ .key }}
      path: {{ .key }}
{{- end -}}

{{/*
The period of a cron schedule in minutes, for the forms whose period is fixed: @hourly, @daily, @weekly, every N
minutes, minute M of every hour or of every N hours, a daily time, a weekly day and time; "" for any other
(the check is then skipped).
arg: the schedule string
*/}}
{{- define "cwj.cronPeriodMinutes" -}}
{{- $s := trim . -}}
{{- $macros := dict "@hourly" "60" "@daily" "1440" "@midnight" "1440" "@weekly" "10080" -}}
{{- if hasKey $macros $s -}}
{{- get $macros $s -}}
{{- else -}}
{{- $f := regexSplit "\\s+" $s -1 -}}
{{- if eq (len $f) 5 -}}
{{- $m := index $f 0 }}{{ $h := index $f 1 }}{{ $rest := join " " (slice $f 2 5) -}}
{{- $num := "^[0-9]+$" -}}
{{- if and (regexMatch "^\\*/[0-9]+$" $m) (eq $h "*") (eq $rest "* * *") -}}
{{- trimPrefix "*/" $m -}}
{{- else if and (regexMatch $num $m) (eq $h "*") (eq $rest "* * *") -}}
60
{{- else if and (regexMatch $num $m) (regexMatch "^\\*/[0-9]+$" $h) (eq $rest "* * *") -}}
{{- mul 60 (trimPrefix "*/" $h | int) -}}
{{- else if and (regexMatch $num $m) (regexMatch $num $h) (eq $rest "* * *") -}}
1440
{{- else if and (regexMatch $num $m) (regexMatch $num $h) (regexMatch "^\\* \\* [0-7]$" $rest) -}}
10080
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A duration as the jobs take it (30m, 24h, 1d, 1h30m, 2w) in whole minutes; "" when it has seconds or less. */}}
{{- define "cwj.durationMinutes" -}}
{{- $units := dict "m" 1 "h" 60 "d" 1440 "w" 10080 -}}
{{- $total := 0 -}}
{{- $ok := regexMatch "^([0-9]+[mhdw])+$" (toString .) -}}
{{- range regexFindAll "[0-9]+[mhdw]" (toString .) -1 -}}
{{- $total = add $total (mul (trimSuffix (substr (sub (len .) 1 | int) (len .) .) . | int) (get $units (substr (sub (len .) 1 | int) (len .) .))) -}}
{{- end -}}
{{- if $ok }}{{ $total }}{{ end -}}
{{- end -}}
