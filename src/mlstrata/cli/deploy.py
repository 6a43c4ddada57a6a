"""``mlstrata deploy docker|k8s|serverless``: turn a package into a deployable artifact.

Each command renders one kind of artifact from a model's package into ``--out`` (written whole
or not at all; a directory with files in it is refused unless ``--force``) and prints what it
wrote and the commands that ship it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._options import WorkspaceOption  # noqa: F401  (the deploy commands take -w)

__all__ = ["register"]

deploy_app = typer.Typer(
    name="deploy", no_args_is_help=True,
    help="Turn a model's package into a Docker build context, Kubernetes/KServe manifests or a "
         "serverless bundle.")

ModelArgument = Annotated[str, typer.Argument(
    help="Package directory, NAME, NAME@N or NAME@ALIAS (registry).", show_default=False)]
OutOption = Annotated[Path, typer.Option(
    "--out", "-o", help="Directory to write (new or empty; see --force).", show_default=False)]
ForceOption = Annotated[bool, typer.Option(
    "--force", help="Replace --out even when it holds files.")]


def register(app: typer.Typer) -> None:
    """Add the ``deploy`` command group to ``app``."""
    app.add_typer(deploy_app)


def package_for(model: str, workspace: Path | None) -> Path:
    """The package directory ``model`` names (a package path, or a workspace model)."""
    from ..package.locate import locate_package
    from ..runtime.manifest import is_package_dir
    from ..workspace import Workspace

    if is_package_dir(model):
        return Path(model)
    return locate_package(model, Workspace.find(workspace))


def k8s(
    model: ModelArgument,
    image: Annotated[str, typer.Option(
        "--image", help="The serving image (mlstrata deploy docker), e.g. "
                        "registry.example.com/team/credit:1.0.", show_default=False)],
    out: OutOption,
    name: Annotated[str | None, typer.Option(
        help="Name of the objects (default: the model's name, e.g. credit-model).",
        show_default=False)] = None,
    namespace: Annotated[str, typer.Option(help="Namespace of the production overlay.")]
        = "mlstrata",
    replicas: Annotated[int | None, typer.Option(
        help="A fixed number of pods, no autoscaler.", show_default=False)] = None,
    min_replicas: Annotated[int | None, typer.Option(
        help="Autoscaler minimum [default: 2].", show_default=False)] = None,
    max_replicas: Annotated[int | None, typer.Option(
        help="Autoscaler maximum [default: 5].", show_default=False)] = None,
    cpu_target: Annotated[int, typer.Option(
        help="Autoscaler target: average CPU use, % of the request.")] = 70,
    cpu_request: Annotated[str, typer.Option(help="CPU request of a pod.")] = "250m",
    memory_request: Annotated[str, typer.Option(help="Memory request of a pod.")] = "256Mi",
    cpu_limit: Annotated[str, typer.Option(help="CPU limit ('' for none).")] = "1",
    memory_limit: Annotated[str, typer.Option(help="Memory limit of a pod.")] = "512Mi",
    workers: Annotated[int, typer.Option(help="Server processes per pod.")] = 1,
    threads: Annotated[int, typer.Option(help="onnxruntime threads per process.")] = 1,
    grpc: Annotated[bool, typer.Option(help="Expose gRPC on 8081 beside REST on 8080.")]
        = True,
    api_key: Annotated[bool, typer.Option(
        help="Require an API key, read from a Secret (never written here).")] = True,
    api_key_secret: Annotated[str | None, typer.Option(
        help="Secret holding the key under 'api-key' [default: NAME-api-key].",
        show_default=False)] = None,
    log: Annotated[str | None, typer.Option(
        help="Prediction log: a directory under /var/lib/mlstrata or a postgresql:// URL.",
        show_default=False)] = None,
    kserve: Annotated[bool, typer.Option(
        "--kserve", help="Add kserve/: a KServe InferenceService (OIP v2).")] = False,
    kserve_mode: Annotated[str, typer.Option(
        help="raw: KServe runs a Deployment + HPA on CPU; serverless: Knative, scaled on "
             "requests in flight.")] = "raw",
    kserve_concurrency: Annotated[int, typer.Option(
        help="Serverless: requests in flight per pod the autoscaler aims at.")] = 8,
    cronjob: Annotated[str | None, typer.Option(
        help="Add a batch-prediction CronJob on this cron schedule, e.g. '0 2 * * *'.",
        show_default=False)] = None,
    batch_image: Annotated[str | None, typer.Option(
        help="CronJob: an image with the full mlstrata (runs mlstrata predict).",
        show_default=False)] = None,
    input: Annotated[str | None, typer.Option(
        "--input", help="CronJob: what to score (/data/... with --batch-claim, or a "
                        "postgresql:// URL).", show_default=False)] = None,
    output: Annotated[str | None, typer.Option(
        "--output", help="CronJob: where predictions go (as --input).",
        show_default=False)] = None,
    batch_key: Annotated[list[str] | None, typer.Option(
        help="CronJob: input column copied to the output (repeat).", show_default=False)]
        = None,
    batch_claim: Annotated[str | None, typer.Option(
        help="CronJob: PersistentVolumeClaim mounted at /data.", show_default=False)] = None,
    time_zone: Annotated[str, typer.Option(help="CronJob: time zone of the schedule.")]
        = "Etc/UTC",
    force: ForceOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
) -> None:
    """Kubernetes manifests for MODEL: a kustomize base (Deployment, Service, autoscaler,
    disruption budget), a production overlay, optionally a KServe InferenceService and a
    batch-prediction CronJob."""
    from ..deploy.image_ref import parse_image
    from ..deploy.k8s import K8sOptions, render_k8s
    from ._common import emit

    parse_image(image)
    options = K8sOptions(
        image=image, name=name, namespace=namespace, replicas=replicas,
        min_replicas=min_replicas, max_replicas=max_replicas, cpu_target=cpu_target,
        cpu_request=cpu_request, memory_request=memory_request, cpu_limit=cpu_limit or None,
        memory_limit=memory_limit, workers=workers, threads=threads, grpc=grpc, api_key=api_key,
        api_key_secret=api_key_secret, log=log, kserve=kserve, kserve_mode=kserve_mode,
        kserve_concurrency=kserve_concurrency, cronjob=cronjob,
        batch_image=batch_image, batch_input=input, batch_output=output,
        batch_keys=tuple(batch_key or ()), batch_claim=batch_claim, time_zone=time_zone)
    emit(render_k8s(package_for(model, workspace), options, out, force=force), as_json)


deploy_app.command("k8s")(k8s)


def serverless(
    model: ModelArgument,
    target: Annotated[str, typer.Option(
        "--target", "-t", help="aws-lambda, gcp-functions or azure-functions.",
        show_default=False)],
    out: OutOption,
    python: Annotated[str | None, typer.Option(
        "--python", help="The platform's Python runtime (default: 3.12 on Lambda, whose "
                         "3.11 runs Amazon Linux 2; 3.11 elsewhere).", show_default=False)]
        = None,
    arch: Annotated[str, typer.Option(
        "--arch", help="x86_64 or arm64 (Lambda only).")] = "x86_64",
    force: ForceOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
) -> None:
    """A serverless bundle of MODEL: one handler answering like mlstrata serve, the lean
    runtime, Linux wheels for the platform's Python and the package; checked against the
    platform's size limits before anything is written, its cold start measured."""
    from ..deploy.serverless import build_serverless
    from ._common import emit

    result = build_serverless(package_for(model, workspace), target, out, python=python,
                              arch=arch, force=force)
    emit(result, as_json)


deploy_app.command("serverless")(serverless)


def docker(
    model: ModelArgument,
    out: OutOption,
    tag: Annotated[str | None, typer.Option(
        "--tag", "-t", help="Image name the README's and the compose file's commands use "
                            "(default: the model's name and version, e.g. credit-model:1).",
        show_default=False)] = None,
    postgres: Annotated[bool, typer.Option(
        "--postgres", help="Also install psycopg, so that MLSTRATA_LOG can be a "
                           "postgresql:// URL (about 13 MB more).")] = False,
    force: ForceOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
) -> None:
    """A Docker build context for MODEL: a multi-stage Dockerfile on a pinned slim Python
    (the lean serving wheel in a venv, the package, non-root user 10001, HEALTHCHECK on
    /v2/health/ready), .dockerignore, docker-compose.yml with Prometheus, and a README."""
    from ..deploy.docker import render_docker
    from ._common import emit

    emit(render_docker(package_for(model, workspace), out, force=force, image=tag,
                       postgres=postgres), as_json)


deploy_app.command("docker")(docker)
