"""Image inputs: ``ImageReader`` / ``decode_image`` on real Pillow data, then ``ResolveInference``.

Every picture is drawn with Pillow at test time. URLs are served by a ``ThreadingHTTPServer`` on
a loopback port; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import base64
import http.server
import io
import random
import socket
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apache_beam as beam
import httpx
import numpy as np
import pytest
from conftest import counter, run_collect
from model_factory import IMAGE_MODEL_NAME
from PIL import Image, ImageDraw, ImageFile, features
from qdrant_client import models

from qdrant_beam.io.errors import InvalidImage, PermanentError
from qdrant_beam.transforms.dead_letters import FailedRecord, Stage
from qdrant_beam.transforms.images import ImageLimits, ImageReader, decode_image
from qdrant_beam.transforms.metrics import METRICS_NAMESPACE
from qdrant_beam.transforms.resolve import ResolveInference

SIZE = (64, 48)
DEFAULT = ImageLimits()
SUPPORTED = "supported: BMP, GIF, JPEG, PNG, TIFF, WEBP"
BOMB_SIDE = 20_000
IMAGE_DIM = 512


# --- pictures ------------------------------------------------------------------------------


def picture(seed: int, size: tuple[int, int] = SIZE, mode: str = "RGB") -> Image.Image:
    """A deterministic picture: a background and a rectangle whose colour and place vary."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    width, height = size
    x, y = rng.randrange(width // 2), rng.randrange(height // 2)
    box = (x, y, x + width // 3, y + height // 3)
    ImageDraw.Draw(image).rectangle(box, fill=tuple(rng.randrange(256) for _ in range(3)))
    return image.convert(mode)


def noise(seed: int, size: tuple[int, int]) -> Image.Image:
    """Random RGB pixels: PNG cannot compress them, so the file is ~3 bytes per pixel."""
    rng = random.Random(seed)
    return Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))


def encode(image: Image.Image, fmt: str = "PNG", **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def svg() -> bytes:
    return (
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="64" height="48">'
        b'<rect width="64" height="48" fill="red"/></svg>'
    )


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return len(body).to_bytes(4, "big") + kind + body + crc.to_bytes(4, "big")


def free_port() -> int:
    """A loopback port nothing listens on: bind to port 0, note the port, close."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def bomb_png() -> bytes:
    """A real, valid 20000x20000 1-bit PNG of zeros (400M pixels) in ~48 KB.

    Built with zlib directly: deflating the 50 MB of scanlines takes ~0.3 s, where Pillow's
    own ``save`` needs about five times longer.
    """
    row = bytes(1 + BOMB_SIDE // 8)  # filter byte 0, then 2500 bytes of black pixels
    header = BOMB_SIDE.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0])  # 1-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(row * BOMB_SIDE, 9))
        + _png_chunk(b"IEND", b"")
    )


# --- loopback HTTP server ------------------------------------------------------------------


@dataclass
class ImageServer:
    base: str
    routes: dict[str, bytes]

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def serve(self, path: str, data: bytes) -> str:
        self.routes[path] = data
        return self.url(path)


@pytest.fixture(scope="module")
def server() -> Iterator[ImageServer]:
    routes: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = routes.get(self.path)
            if body is None:
                self.send_error(404, "no such image")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep pytest's output clean

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    host, port = httpd.server_address[:2]
    with pytest.MonkeyPatch.context() as patch:
        # An HTTP(S)_PROXY in the environment must not capture loopback requests.
        for name in ("NO_PROXY", "no_proxy"):
            patch.setenv(name, "127.0.0.1,localhost")
        try:
            yield ImageServer(f"http://{host}:{port}", routes)
        finally:
            httpd.shutdown()
            httpd.server_close()
            thread.join(timeout=5)
    assert not thread.is_alive()


@pytest.fixture
def reader() -> Iterator[ImageReader]:
    image_reader = ImageReader()
    yield image_reader
    image_reader.close()


def assert_rgb(image: Image.Image, size: tuple[int, int] = SIZE) -> None:
    assert isinstance(image, Image.Image)
    assert image.mode == "RGB"
    assert image.size == size


def assert_same_pixels(image: Image.Image, expected: Image.Image) -> None:
    assert image.tobytes() == expected.convert("RGB").tobytes()


# --- good inputs ---------------------------------------------------------------------------


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview], ids=lambda w: w.__name__)
def test_png_bytes_decode_losslessly(reader: ImageReader, wrap: Callable[[bytes], Any]) -> None:
    source = picture(1)
    image = reader.load(wrap(encode(source)))
    assert_rgb(image)
    assert_same_pixels(image, source)


def test_jpeg_bytes(reader: ImageReader) -> None:
    source = picture(2)
    image = reader.load(encode(source, "JPEG", quality=95))
    assert_rgb(image)
    # JPEG is lossy; the rectangle's and background's colours survive closely.
    diff = np.abs(np.asarray(image, dtype=int) - np.asarray(source, dtype=int))
    assert diff.mean() < 4


@pytest.mark.parametrize(
    ("fmt", "mode", "params"),
    [
        ("PNG", "RGBA", {}),
        ("PNG", "L", {}),
        ("PNG", "P", {}),
        ("JPEG", "L", {}),
        ("JPEG", "CMYK", {}),
        ("GIF", "RGB", {}),
        ("BMP", "RGB", {}),
        ("TIFF", "RGB", {"compression": "tiff_lzw"}),
        pytest.param(
            "WEBP",
            "RGB",
            {"lossless": True},
            marks=pytest.mark.skipif(not features.check("webp"), reason="Pillow without WebP"),
        ),
    ],
)
def test_every_supported_format_and_mode_comes_out_rgb(
    reader: ImageReader, fmt: str, mode: str, params: dict[str, Any]
) -> None:
    assert_rgb(reader.load(encode(picture(3, mode=mode), fmt, **params)))


def test_jpeg_with_multi_picture_segment_is_a_jpeg(reader: ImageReader) -> None:
    """Pillow opens a JPEG that carries an MPF segment (cameras, phones) as format "MPO"."""
    data = encode(picture(4), "MPO", save_all=True, append_images=[picture(5)])
    assert data[:3] == b"\xff\xd8\xff"
    assert Image.open(io.BytesIO(data)).format == "MPO"
    assert_rgb(reader.load(data))


def test_local_path(reader: ImageReader, tmp_path: Path) -> None:
    source = picture(6)
    path = tmp_path / "photo.png"
    path.write_bytes(encode(source))
    image = reader.load(str(path))
    assert_rgb(image)
    assert_same_pixels(image, source)
    assert_rgb(reader.load(f"  {path}\n"))  # surrounding whitespace is ignored


def test_file_url_goes_through_beam_filesystems(
    reader: ImageReader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apache_beam.io.filesystems import FileSystems

    source = picture(7)
    path = tmp_path / "with space.png"
    path.write_bytes(encode(source))
    opened: list[str] = []
    real_open = FileSystems.open

    def spy(target: str, *args: Any, **kwargs: Any) -> Any:
        opened.append(target)
        return real_open(target, *args, **kwargs)

    monkeypatch.setattr(FileSystems, "open", spy)
    uri = path.as_uri()  # file:///.../with%20space.png
    image = reader.load(uri)
    assert_rgb(image)
    assert_same_pixels(image, source)
    assert opened == [str(path)]
    assert_rgb(reader.load(f"file://localhost{path}"))


def test_plain_base64(reader: ImageReader) -> None:
    source = picture(8)
    data = encode(source)
    image = reader.load(b64(data))
    assert_rgb(image)
    assert_same_pixels(image, source)
    # MIME-style base64 wrapped at 76 columns, and the URL-safe alphabet, decode too.
    wrapped = "\n".join(b64(data)[i : i + 76] for i in range(0, len(b64(data)), 76))
    assert_same_pixels(reader.load(wrapped), source)
    assert_same_pixels(reader.load(base64.urlsafe_b64encode(data).decode()), source)


def test_base64_jpeg_starting_with_slash_is_not_taken_for_a_path(reader: ImageReader) -> None:
    """Base64 of any JPEG starts with "/9j/", which looks like an absolute path."""
    text = b64(encode(picture(9), "JPEG"))
    assert text.startswith("/9j/")
    assert_rgb(reader.load(text))


def test_data_url(reader: ImageReader) -> None:
    source = picture(10)
    image = reader.load("data:image/png;base64," + b64(encode(source)))
    assert_rgb(image)
    assert_same_pixels(image, source)
    assert_rgb(reader.load("data:image/jpeg;base64," + b64(encode(source, "JPEG"))))


def test_http_url(reader: ImageReader, server: ImageServer) -> None:
    source = picture(11)
    url = server.serve("/good/photo.png", encode(source))
    image = reader.load(url)
    assert_rgb(image)
    assert_same_pixels(image, source)


def test_decode_image_directly() -> None:
    assert_rgb(decode_image(encode(picture(12)), DEFAULT))


def test_limits_are_inclusive() -> None:
    data = encode(picture(13))
    limits = ImageLimits(max_pixels=SIZE[0] * SIZE[1], max_bytes=len(data))
    assert_rgb(decode_image(data, limits))


# --- bad inputs ----------------------------------------------------------------------------


def refused(load: Callable[[], Any], *fragments: str) -> str:
    """Assert ``load()`` raises InvalidImage whose message holds every fragment; return it."""
    with pytest.raises(InvalidImage) as info:
        load()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert isinstance(info.value, PermanentError)
    return message


def test_random_bytes(reader: ImageReader) -> None:
    data = random.Random(0).randbytes(1000)
    refused(
        lambda: reader.load(data),
        "cannot identify image data",
        "1000 bytes",
        "corrupt bytes or an unsupported format",
    )


def test_truncated_png_pixel_data(reader: ImageReader) -> None:
    data = encode(noise(1, SIZE))
    refused(lambda: reader.load(data[: len(data) // 2]), "corrupt PNG image data", "truncated")


def test_truncated_jpeg(reader: ImageReader) -> None:
    data = encode(noise(2, SIZE), "JPEG")
    refused(lambda: reader.load(data[: len(data) // 2]), "corrupt JPEG image data", "truncated")


@pytest.mark.parametrize("cut", [12, 16, 20, 29])
def test_png_cut_inside_its_header(reader: ImageReader, cut: int) -> None:
    """Pillow's PNG plugin raises a bare OSError ("Truncated File Read") from ``Image.open``."""
    data = encode(picture(14))[:cut]
    message = refused(lambda: reader.load(data), f"{cut} bytes starting b'\\x89PNG")
    assert "truncated" in message.lower() or "cannot identify" in message


def test_png_missing_only_its_end_chunk_still_decodes(reader: ImageReader) -> None:
    """Pillow needs no IEND: the pixels are all there, so this is not an error."""
    source = picture(15)
    data = encode(source)
    assert data[-12:] == _png_chunk(b"IEND", b"")
    assert_same_pixels(reader.load(data[:-12]), source)


@pytest.mark.parametrize(
    "data",
    [svg(), b"\n  " + svg().split(b"\n", 1)[1]],
    ids=["svg-with-xml-declaration", "bare-svg"],
)
def test_svg_is_unsupported(reader: ImageReader, data: bytes) -> None:
    refused(lambda: reader.load(data), "unsupported image format SVG", SUPPORTED)


@pytest.mark.parametrize("fmt", ["ICO", "TGA", "PPM"])
def test_format_pillow_reads_but_limits_exclude(reader: ImageReader, fmt: str) -> None:
    data = encode(picture(16), fmt)
    assert Image.open(io.BytesIO(data)).format == fmt  # Pillow itself would decode it
    refused(lambda: reader.load(data), f"unsupported image format {fmt}", SUPPORTED)


def test_formats_limit_is_configurable() -> None:
    limits = ImageLimits(formats=frozenset({"PNG"}))
    assert_rgb(decode_image(encode(picture(17)), limits))
    refused(
        lambda: decode_image(encode(picture(17), "JPEG"), limits),
        "unsupported image format JPEG; supported: PNG",
    )


def test_too_many_pixels() -> None:
    limits = ImageLimits(max_pixels=SIZE[0] * SIZE[1] - 1)
    refused(
        lambda: decode_image(encode(picture(18)), limits),
        "image too large",
        f"{SIZE[0]}x{SIZE[1]} = {SIZE[0] * SIZE[1]} pixels",
        f"over the limit of {SIZE[0] * SIZE[1] - 1}",
    )


def _forbid_decoding(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    def load(self: ImageFile.ImageFile) -> Any:
        calls.append(type(self).__name__)
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return calls


def test_decompression_bomb_refused_from_header(
    reader: ImageReader, bomb_png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert len(bomb_png) < 100_000
    with pytest.raises(Image.DecompressionBombError):  # Pillow reads its IHDR on open
        Image.open(io.BytesIO(bomb_png))
    calls = _forbid_decoding(monkeypatch)
    refused(lambda: reader.load(bomb_png), "image too large", f"{BOMB_SIDE * BOMB_SIDE}")
    assert calls == []


def test_header_over_max_pixels_is_refused_without_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Below Pillow's own bomb limit, ``max_pixels`` refuses from the header alone."""
    data = encode(Image.new("1", (4000, 3000)))  # 12M pixels, ~2 KB
    calls = _forbid_decoding(monkeypatch)
    refused(
        lambda: decode_image(data, ImageLimits(max_pixels=1_000_000)),
        "4000x3000 = 12000000 pixels, over the limit of 1000000",
    )
    assert calls == []


def test_pillow_bomb_limit_caps_a_higher_max_pixels(bomb_png: bytes) -> None:
    """Raising ``max_pixels`` past Pillow's ``MAX_IMAGE_PIXELS`` does not let a bomb through."""
    refused(
        lambda: decode_image(bomb_png, ImageLimits(max_pixels=10**9)),
        "image too large",
        "decompression bomb",
    )


def test_too_many_bytes(reader: ImageReader, tmp_path: Path, server: ImageServer) -> None:
    data = encode(picture(19))
    limit = len(data) - 1
    small = ImageReader(ImageLimits(max_bytes=limit))
    try:
        refused(lambda: small.load(data), f"image is {len(data)} bytes", f"limit of {limit}")
        path = tmp_path / "big.png"
        path.write_bytes(data)
        refused(lambda: small.load(str(path)), f"over the limit of {limit}")
        refused(lambda: small.load(b64(data)), f"over the limit of {limit}")
        url = server.serve("/big.png", data)
        refused(lambda: small.load(url), url, f"over the limit of {limit} bytes")
    finally:
        small.close()
    assert_rgb(reader.load(data))  # the default limit takes it


def test_unreachable_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/photo.png"
    # No connect retries: the reader's own client backs off between them.
    with httpx.Client(transport=httpx.HTTPTransport(retries=0), timeout=5) as client:
        quick = ImageReader(client=client)
        refused(lambda: quick.load(url), f"image URL {url} is unreachable", "ConnectError")
        quick.close()
        assert not client.is_closed  # a client passed in belongs to the caller


def test_http_404(reader: ImageReader, server: ImageServer) -> None:
    url = server.url("/missing.png")
    refused(lambda: reader.load(url), f"image URL {url} answered HTTP 404")


def test_http_body_that_is_not_an_image(reader: ImageReader, server: ImageServer) -> None:
    url = server.serve("/page.html", b"<html><body>not an image</body></html>")
    refused(lambda: reader.load(url), "cannot identify image data")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("not base64 at all!", "not a URL, an existing path, or valid base64"),
        ("abcde", "invalid base64 image data"),
        ("iVBORw0KGgo=====", "invalid base64 image data"),
    ],
)
def test_invalid_base64(reader: ImageReader, text: str, fragment: str) -> None:
    refused(lambda: reader.load(text), fragment)


def test_valid_base64_of_something_else(reader: ImageReader) -> None:
    refused(lambda: reader.load(b64(b"hello, this is plain text")), "cannot identify image data")


def test_data_url_without_base64(reader: ImageReader) -> None:
    refused(
        lambda: reader.load("data:image/png,rawbytes"),
        "data URL must be base64-encoded",
        "'data:image/png'",
    )
    refused(lambda: reader.load("data:image/png;base64"), "data URL has no ','")
    refused(lambda: reader.load("data:image/png;base64,@@@"), "not a URL")


def test_data_url_must_declare_an_image_media_type(reader: ImageReader) -> None:
    """A PNG labelled text/html is refused; an image labelled as another image format is
    decoded by its bytes, as browsers do."""
    png = b64(encode(picture(3)))
    refused(lambda: reader.load("data:text/html;base64," + png), "media type 'text/html'")
    refused(lambda: reader.load("data:;base64," + png), "media type none")
    assert_rgb(reader.load("data:image/jpeg;base64," + png))
    assert_rgb(reader.load("data:IMAGE/PNG;name=a.png;base64," + png))


def test_nonexistent_path(reader: ImageReader, tmp_path: Path) -> None:
    missing = tmp_path / "missing.png"
    refused(lambda: reader.load(str(missing)), f"image file {str(missing)!r} does not exist")
    refused(lambda: reader.load("./nope.jpg"), "'./nope.jpg' does not exist")
    refused(lambda: reader.load("/no/such/photo"), "'/no/such/photo' does not exist")
    refused(lambda: reader.load("photo.png"), "'photo.png' does not exist")
    refused(
        lambda: reader.load(missing.as_uri()),
        f"cannot read image {missing.as_uri()}",
        "FileNotFoundError",
    )


def test_long_bad_input_is_not_echoed_whole(reader: ImageReader) -> None:
    text = "/" + "A" * 100_000
    message = refused(lambda: reader.load(text), "does not exist", "100001 chars")
    assert len(message) < 300


def test_empty_inputs(reader: ImageReader) -> None:
    refused(lambda: reader.load(b""), "cannot identify image data (0 bytes")
    refused(lambda: reader.load("   "), "not a URL, an existing path, or valid base64")


@pytest.mark.parametrize("value", [42, None, 3.5, ["a"], {"image": "x"}])
def test_value_of_wrong_type(reader: ImageReader, value: Any) -> None:
    refused(
        lambda: reader.load(value),
        "image input must be a URL, path, base64 string or bytes",
        f"got {type(value).__name__}",
    )


# --- ResolveInference ----------------------------------------------------------------------

PIPELINE_LIMITS = ImageLimits(max_pixels=50_000, max_bytes=100_000)


def image_point(point_id: int, image: Any) -> models.PointStruct:
    return models.PointStruct(
        id=point_id,
        vector={"image": models.Image(image=image, model=IMAGE_MODEL_NAME)},
        payload={"n": point_id},
    )


def test_resolve_inference_mixed_batch(
    models_map: dict[str, Any], server: ImageServer, tmp_path: Path, bomb_png: bytes
) -> None:
    same = encode(picture(100))
    jpeg_path = tmp_path / "b.jpg"
    jpeg_path.write_bytes(encode(picture(101), "JPEG"))
    uri_path = tmp_path / "g.png"
    uri_path.write_bytes(encode(picture(106)))
    too_many_bytes = encode(noise(3, (200, 200)))  # 40K pixels, ~120 KB
    assert len(too_many_bytes) > PIPELINE_LIMITS.max_bytes
    unreachable = f"http://127.0.0.1:{free_port()}/a.png"
    truncated = encode(noise(4, SIZE))

    good = {
        1: same,
        2: same,  # the same bytes again: one model input for both
        3: str(jpeg_path),
        4: b64(encode(picture(102))),
        5: server.serve("/pipeline/d.png", encode(picture(103))),
        6: b64(encode(picture(104), "JPEG")),
        7: "data:image/png;base64," + b64(encode(picture(105))),
        8: uri_path.as_uri(),
    }
    distinct_good_inputs = len(good) - 1
    bad = {
        20: (random.Random(1).randbytes(500), "cannot identify image data"),
        21: (truncated[: len(truncated) // 2], "corrupt PNG image data"),
        22: (svg(), "unsupported image format SVG"),
        23: (encode(picture(107), "ICO"), "unsupported image format ICO"),
        24: (encode(picture(108, (300, 300))), "300x300 = 90000 pixels"),
        25: (bomb_png, "image too large"),
        26: (too_many_bytes, f"over the limit of {PIPELINE_LIMITS.max_bytes}"),
        27: (unreachable, "is unreachable"),
        28: (server.url("/pipeline/missing.png"), "answered HTTP 404"),
        29: ("not base64 at all!", "not a URL, an existing path, or valid base64"),
        30: ("data:image/png,rawbytes", "data URL must be base64-encoded"),
        31: (str(tmp_path / "missing.png"), "does not exist"),
        32: (b"", "image bytes are empty"),
        33: (12345, "got int"),
    }
    points = [image_point(i, value) for i, value in good.items()]
    points += [image_point(i, value) for i, (value, _) in bad.items()]
    random.Random(5).shuffle(points)  # good and bad interleaved in the one batch

    def build(pipeline: beam.Pipeline) -> dict[str, Any]:
        resolved, dead = (
            pipeline
            | beam.Create(points)
            | ResolveInference(models=models_map, image_limits=PIPELINE_LIMITS)
        )
        return {"points": resolved, "dead": dead}

    out, result = run_collect(build)

    resolved = {p.id: p for p in out["points"]}
    dead = {d.record.id: d for d in out["dead"]}
    assert len(resolved) == len(out["points"]) and len(dead) == len(out["dead"])
    assert set(resolved) == set(good)
    assert set(dead) == set(bad)
    assert len(out["points"]) + len(out["dead"]) == len(points)  # nothing lost or doubled

    for point_id, point in resolved.items():
        vector = point.vector["image"]
        assert isinstance(vector, list) and len(vector) == IMAGE_DIM
        assert all(isinstance(x, float) for x in vector)
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-4)
        assert point.payload == {"n": point_id}
    assert resolved[1].vector["image"] == resolved[2].vector["image"]
    assert resolved[1].vector["image"] != resolved[3].vector["image"]

    for point_id, record in dead.items():
        assert isinstance(record, FailedRecord)
        assert record.stage == Stage.INFERENCE == "inference"
        assert record.error_type == "InvalidImage", (point_id, record)
        assert bad[point_id][1] in record.message, (point_id, record.message)
        assert record.record.vector["image"].image == bad[point_id][0]

    assert counter(result, "model_inputs", METRICS_NAMESPACE) == distinct_good_inputs
    assert counter(result, "model_calls", METRICS_NAMESPACE) == 1
    assert counter(result, "points_resolved", METRICS_NAMESPACE) == len(good)
    assert counter(result, "dead_letters", METRICS_NAMESPACE) == len(bad)
