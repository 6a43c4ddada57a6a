"""Deployable artifacts from a package: a Docker build context, Kubernetes/KServe manifests and
serverless bundles (AWS Lambda, Google Cloud Functions, Azure Functions).

Deployment reads packages and never trains: every artifact carries the package (verified by its
manifest when the server starts) and the lean serving distribution (:mod:`.lean`), never the
training stack. Each kind of artifact has one module (:mod:`.docker`, :mod:`.k8s`,
:mod:`.serverless`); :mod:`.output` writes an artifact directory all at once or not at all.
"""
