"""A loopback fake of the AI Horde image API (/api/v2/...), with its limits and error shapes.

Errors are {"message": ..., "rc": ...} with the Horde's status codes: 401 InvalidAPIKey, 403
KudosUpfront (over 576x576 area or 40 steps -- 20 for second-order samplers -- without
kudos; the anonymous key never has any), 400 CorruptPrompt, 429 TooManyPrompts, 400 "Input
payload validation failed" for sizes off the 64 grid. A request waits `queue_position` checks
in a queue counting down, then renders for one check, then is done; it can be told to fault,
be impossible, or censor images. GET /generate/status is limited to 10 a minute per request,
as on the real Horde. Every request is logged with its time, so tests can check poll rates.

img2img: `source_image` is a base64 image (WebP, or any format the workers' PIL reads) or an
https link; `source_processing` one of img2img, inpainting, outpainting, remix (img2img when
left out); `params.denoising_strength` 0.01 to 1. An unreadable source image is 400
ImageValidationFailed. A finished img2img job's images carry the source's colour at the corner
pixel, so a test can see the source reached the worker. `sources` keeps every decoded source.

    async with FakeHorde(queue_position=2) as fake:
        provider = HordeProvider(session, "0000000000", fake.url, poll_interval=0.01)
"""

from __future__ import annotations

import base64
import binascii
import io
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image

from tests.fakes.loopback import LoopbackServer

ANONYMOUS_KEY = "0000000000"
SECOND_ORDER = {"k_heun", "k_dpm_2", "k_dpm_2_a", "k_dpmpp_2s_a", "k_dpmpp_sde"}
SAMPLERS = {"k_lms", "k_heun", "k_euler", "k_euler_a", "k_dpm_2", "k_dpm_2_a", "k_dpm_fast",
            "k_dpm_adaptive", "k_dpmpp_2s_a", "k_dpmpp_2m", "dpmsolver", "k_dpmpp_sde", "DDIM",
            "lcm"}  # fmt: skip
MODELS = ("stable_diffusion", "AlbedoBase XL (SDXL)", "Deliberate")
SOURCE_PROCESSING = ("img2img", "inpainting", "outpainting", "remix")
CORRUPT_WORDS = ("forbidden-word",)


def make_webp(width: int, height: int, seed: int, source: bytes | None = None) -> bytes:
    """A real WebP of width x height whose colour follows the seed (and, for img2img, whose
    top-left block takes the source's top-left colour)."""
    buffer = io.BytesIO()
    colour = (seed * 37 % 256, seed * 91 % 256, seed * 53 % 256)
    image = Image.new("RGB", (width, height), colour)
    if source is not None:
        with Image.open(io.BytesIO(source)) as picture:
            corner = picture.convert("RGB").getpixel((0, 0))
        image.paste(corner, (0, 0, 16, 16))
    image.save(buffer, format="WEBP", quality=90)
    return buffer.getvalue()


def horde_error(status: int, message: str, rc: str, **headers: str) -> web.Response:
    return web.json_response({"message": message, "rc": rc}, status=status, headers=headers)


@dataclass
class LoggedRequest:
    """One request the fake received: method, path, headers, JSON body, time.monotonic()."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    at: float


@dataclass
class Job:
    id: str
    payload: dict[str, Any]
    apikey: str
    position: int
    n: int
    finished: int = 0
    processing: int = 0
    done: bool = False
    cancelled: bool = False
    status_calls: list[float] = field(default_factory=list)


@dataclass(eq=False)
class FakeHorde(LoopbackServer):
    """The fake Horde; `async with` starts it on 127.0.0.1 at a random port."""

    keys: dict[str, float] = field(default_factory=lambda: {"registered-key": 5000.0})  # kudos
    queue_position: int = 2  # checks spent waiting in the queue before a worker picks it up
    seconds_per_position: int = 8  # what wait_time claims per queue position
    censor: str = "none"  # "none", "first" or "all"
    fault: bool = False  # the request faults once a worker takes it
    impossible: bool = False  # no worker can serve the request (is_possible false)
    r2: bool | None = None  # None: follow the request's r2 flag
    max_res: int = 576  # above this area (side^2) kudos are required upfront
    requests: list[LoggedRequest] = field(default_factory=list)
    jobs: dict[str, Job] = field(default_factory=dict)
    images: dict[str, bytes] = field(default_factory=dict)
    sources: dict[str, bytes] = field(default_factory=dict)  # job id: decoded source_image
    _failures: list[tuple[int, str, str, dict[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        LoopbackServer.__init__(self)

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=32 * 1024**2)
        app.router.add_post("/api/v2/generate/async", self._submit)
        app.router.add_get("/api/v2/generate/check/{id}", self._check)
        app.router.add_get("/api/v2/generate/status/{id}", self._status)
        app.router.add_delete("/api/v2/generate/status/{id}", self._delete)
        app.router.add_get("/api/v2/find_user", self._find_user)
        app.router.add_get("/api/v2/status/models", self._models)
        app.router.add_get("/api/v2/status/heartbeat", self._heartbeat)
        app.router.add_get("/r2/{name}", self._download)
        return app

    def fail_next(self, status: int, rc: str, message: str = "", retry_after: str = "") -> None:
        """The next submit answers `status` {"message", "rc"} (e.g. 429 TooManyPrompts)."""
        headers = {"Retry-After": retry_after} if retry_after else {}
        self._failures.append((status, rc, message or f"{rc} (injected)", headers))

    def logged(self, prefix: str, method: str | None = None) -> list[LoggedRequest]:
        return [
            r for r in self.requests
            if r.path.startswith(prefix) and method in (None, r.method)
        ]  # fmt: skip

    # ------------------------------------------------------------------ handlers

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        payload = None
        if request.can_read_body:
            try:
                payload = await request.json()
            except ValueError:
                payload = None
        headers = {
            k: v for k, v in request.headers.items() if k.lower() in ("apikey", "client-agent")
        }
        self.requests.append(
            LoggedRequest(request.method, request.path, headers, payload, time.monotonic())
        )
        return await handler(request)

    async def _submit(self, request: web.Request) -> web.Response:
        apikey = request.headers.get("apikey")
        if not apikey:
            return web.json_response(
                {"errors": {"apikey": "The API Key corresponding to a registered user. "
                            "Missing required parameter in the HTTP headers"},
                 "message": "Input payload validation failed"}, status=400)  # fmt: skip
        if self._failures:
            status, rc, message, headers = self._failures.pop(0)
            return horde_error(status, message, rc, **headers)
        try:
            data = await request.json()
        except ValueError:
            return web.json_response({"message": "Failed to decode JSON object"}, status=400)
        params = data.get("params") or {}
        invalid = self._validate(params)
        if data.get("source_processing", "img2img") not in SOURCE_PROCESSING:
            invalid["source_processing"] = (
                f"'{data['source_processing']}' is not one of {list(SOURCE_PROCESSING)}"
            )
        if invalid:
            return web.json_response(
                {"errors": invalid, "message": "Input payload validation failed"}, status=400
            )
        if apikey != ANONYMOUS_KEY and apikey not in self.keys:
            return horde_error(
                401, "No user matching sent API Key. Have you remembered to register at "
                "https://stablehorde.net/register ?", "InvalidAPIKey"
            )  # fmt: skip
        if not str(data.get("prompt") or "").strip():
            return horde_error(400, "You cannot specify an empty prompt.", "MissingPrompt")
        if any(word in data["prompt"] for word in CORRUPT_WORDS):
            return horde_error(
                400, "This prompt appears to violate our terms of service and will be reported. "
                "Please contact us if you think this is an error.", "CorruptPrompt"
            )  # fmt: skip
        width, height = params.get("width", 512), params.get("height", 512)
        steps, n = params.get("steps", 30), params.get("n", 1)
        accurate = steps * (2 if params.get("sampler_name", "k_euler_a") in SECOND_ORDER else 1)
        over = width * height > self.max_res**2 or accurate > 40
        if over or not data.get("slow_workers", True):
            required = round(width * height / 4096 * steps / 400 * n, 2) + 1
            if self.keys.get(apikey, 0.0) < required:
                return horde_error(
                    403, f"Due to heavy demand, for requests over {self.max_res}x{self.max_res} "
                    "or over 50 steps (10 steps for LCM work, 30 steps for Stable Cascade, and "
                    "half those steps for k_heun, dpmpp_sde, and dpm_2*) the client needs to "
                    f"already have the required kudos. This request requires {required} kudos "
                    "to fulfil.", "KudosUpfront",
                )  # fmt: skip
        source = None
        if data.get("source_image"):
            source = _decode_image(str(data["source_image"]))
            if source is None:
                return horde_error(400, "Image validation failed: the source image could not "
                                   "be read.", "ImageValidationFailed")  # fmt: skip
        job = Job(str(uuid.uuid4()), data, apikey, self.queue_position, n)
        self.jobs[job.id] = job
        if source is not None:
            self.sources[job.id] = source
        answer: dict[str, Any] = {"id": job.id, "kudos": round(width * height / 4096 * n / 10)}
        if self.impossible:
            answer["message"] = (
                "Warning: No available workers can fulfill this request. It will expire in "
                "20 minutes unless a worker appears. Please confider reducing its size of the "
                "request or choosing a different model."
            )
        return web.json_response(answer, status=202)

    @staticmethod
    def _validate(params: dict[str, Any]) -> dict[str, str]:
        errors = {}
        for side in ("width", "height"):
            value = params.get(side, 512)
            if not isinstance(value, int) or not 64 <= value <= 3072 or value % 64:
                errors[f"params.{side}"] = f"{value} is not a multiple of 64 from 64 to 3072"
        if not isinstance(params.get("steps", 30), int) or not 1 <= params.get("steps", 30) <= 500:
            errors["params.steps"] = f"{params.get('steps')} is not from 1 to 500"
        if not isinstance(params.get("n", 1), int) or not 1 <= params.get("n", 1) <= 20:
            errors["params.n"] = f"{params.get('n')} is not from 1 to 20"
        if params.get("sampler_name", "k_euler_a") not in SAMPLERS:
            errors["params.sampler_name"] = (
                f"'{params.get('sampler_name')}' is not one of {sorted(SAMPLERS)}"
            )
        if "seed" in params and not isinstance(params["seed"], str):
            errors["params.seed"] = f"{params['seed']} is not of type 'string'"
        strength = params.get("denoising_strength", 0.75)
        if not isinstance(strength, (int, float)) or not 0.01 <= strength <= 1:
            errors["params.denoising_strength"] = f"{strength} is not from 0.01 to 1.0"
        return errors

    def _job(self, request: web.Request, kind: str) -> Job | web.Response:
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return horde_error(
                404, f"Image Waiting Prompt ({kind}) with ID '{request.match_info['id']}' not "
                "found.", "RequestNotFound"
            )  # fmt: skip
        return job

    def _advance(self, job: Job) -> None:
        """One /check moves the simulated queue on by one step."""
        if job.done or job.cancelled:
            return
        if job.position > 0:
            job.position -= 1
        elif job.processing == 0:
            job.processing = job.n
        else:
            job.finished, job.processing, job.done = job.n, 0, True

    def _lite(self, job: Job) -> dict[str, Any]:
        waiting = 0 if job.done or job.processing else job.n
        faulted = self.fault and job.position == 0 and not job.done
        return {
            "finished": job.finished, "processing": job.processing, "restarted": 0,
            "waiting": waiting, "done": job.done and not faulted, "faulted": faulted,
            "wait_time": (job.position + (0 if job.done else 1)) * self.seconds_per_position,
            "queue_position": job.position, "kudos": float(job.finished * 10),
            "is_possible": not self.impossible,
        }  # fmt: skip

    async def _check(self, request: web.Request) -> web.Response:
        job = self._job(request, "Check")
        if isinstance(job, web.Response):
            return job
        self._advance(job)
        return web.json_response(self._lite(job))

    async def _status(self, request: web.Request) -> web.Response:
        job = self._job(request, "Status")
        if isinstance(job, web.Response):
            return job
        now = time.monotonic()
        job.status_calls = [t for t in job.status_calls if now - t < 60] + [now]
        if len(job.status_calls) > 10:  # limiter.limit("10/minute") on this path
            return web.json_response(
                {"message": "10 per 1 minute"}, status=429, headers={"Retry-After": "60"}
            )
        return web.json_response({**self._lite(job), "generations": self._generations(job),
                                  "shared": False})  # fmt: skip

    async def _delete(self, request: web.Request) -> web.Response:
        job = self._job(request, "Delete")
        if isinstance(job, web.Response):
            return job
        status = {**self._lite(job), "generations": self._generations(job), "shared": False}
        job.cancelled = True
        return web.json_response(status)

    def _generations(self, job: Job) -> list[dict[str, Any]]:
        if not job.finished:
            return []
        params = job.payload.get("params") or {}
        base = params.get("seed", "")
        generations = []
        for index in range(job.finished):
            seed = int(base) + index * params.get("seed_variation", 1) if base.isdigit() else 7
            gen_id = f"{job.id}-{index}"
            censored = self.censor == "all" or (self.censor == "first" and index == 0)
            image = make_webp(params.get("width", 512), params.get("height", 512), seed,
                              self.sources.get(job.id))  # fmt: skip
            use_r2 = job.payload.get("r2", True) if self.r2 is None else self.r2
            if use_r2:
                self.images[f"{gen_id}.webp"] = image
                img = f"{self.url}/r2/{gen_id}.webp"
            else:
                img = base64.b64encode(image).decode()
            generations.append({
                "img": img, "seed": str(seed), "id": gen_id, "censored": censored,
                "worker_id": "00000000-0000-0000-0000-000000000001", "worker_name": "fake-gpu",
                "model": (job.payload.get("models") or ["stable_diffusion"])[0],
                "gen_metadata": [{"type": "censorship", "value": "nsfw"}] if censored else [],
            })  # fmt: skip
        generations.reverse()  # workers finish in any order
        return generations

    async def _download(self, request: web.Request) -> web.Response:
        image = self.images.get(request.match_info["name"])
        if image is None:
            return web.Response(status=404, text="NoSuchKey")
        return web.Response(body=image, content_type="image/webp")

    async def _find_user(self, request: web.Request) -> web.Response:
        apikey = request.headers.get("apikey", "")
        if apikey == ANONYMOUS_KEY:
            return web.json_response({"username": "Anonymous#0", "id": 0, "kudos": 0,
                                      "concurrency": 20})  # fmt: skip
        if apikey not in self.keys:
            return horde_error(404, f"User with api_key '{apikey}' not found.", "UserNotFound")
        return web.json_response({"username": "imagebot#4242", "id": 4242,
                                  "kudos": self.keys[apikey], "concurrency": 30})  # fmt: skip

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response([
            {"name": name, "count": 3, "performance": 1200000.0, "queued": 0.0, "jobs": 0.0,
             "eta": 10, "type": "image"} for name in MODELS
        ])  # fmt: skip

    async def _heartbeat(self, request: web.Request) -> web.Response:
        return web.json_response({"message": "OK", "version": "4.44.0"})


def _decode_image(text: str) -> bytes | None:
    """The bytes of a base64 source image that PIL can read, else None (links are not
    fetched: a loopback fake has nothing to fetch them from)."""
    try:
        data = base64.b64decode(text, validate=True)
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except (binascii.Error, ValueError, OSError):
        return None
    return data


__all__ = ["ANONYMOUS_KEY", "FakeHorde", "LoggedRequest", "make_webp"]
