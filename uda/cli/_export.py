"""``uda export``: a run's model as ONNX, TorchScript, an ExportedProgram or shareable weights, checked against
PyTorch."""

from __future__ import annotations

import sys

import click

from ._util import Size


@click.command("export")
@click.argument("run_or_checkpoint", type=click.Path(exists=True))
@click.option("--format", "fmt", required=True, type=click.Choice(["onnx", "torchscript", "exported-program", "weights"]),
              help="onnx (needs the export extra), torchscript, exported-program (torch.export, .pt2), or weights "
                   "(state dict + model card, for uda.load).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The file to write.")
@click.option("--size", type=Size(), help="Input size WxH fixed in the graph [default: the run's eval.size].")
@click.option("--tolerance", type=click.FloatRange(min=0), default=1e-4, show_default=True,
              help="Largest accepted absolute logit difference between the export and PyTorch.")
@click.option("--model", "model_name", help="Model of a bare weights file (a run checkpoint describes its own).")
@click.option("--num-classes", type=int, help="Classes of a bare weights file's model [default: 19].")
def export_cmd(
    run_or_checkpoint: str,
    fmt: str,
    out: str,
    size: tuple[int, int] | None,
    tolerance: float,
    model_name: str | None,
    num_classes: int | None,
) -> None:
    """Export the model of a run (or checkpoint) and check it numerically against PyTorch.

    The graph takes (1, 3, H, W) RGB images in [0, 1] at a fixed size (the input normalisation is inside)
    and returns the logits (1, C, h, w) at the model's output stride; weights is the PyTorch model for
    uda.load (its state dict and model card, without the run's optimizer state). The export is run on a random input
    and compared with the PyTorch model: the largest absolute logit difference is printed, and above
    --tolerance the command exits with 1 (the file is kept for inspection).

    \b
    Examples:
        uda export runs/mlfa_synthetic --format onnx --out mlfa.onnx
        uda export runs/mlfa_synthetic --format exported-program --out mlfa.pt2 --size 1024x512
        uda export runs/mlfa_synthetic --format weights --out mlfa_weights.pt
    """
    from .._errors import UdaError
    from .._load import load
    from ..config import parse_size
    from ..export import export

    model = load(run_or_checkpoint, model=model_name, num_classes=num_classes)
    if size is None:
        given = model.card.get("input_size")
        if not given:
            raise UdaError(f"{run_or_checkpoint}: no input size on record (the run evaluates at the images' own "
                           "size); give --size WxH")
        size = parse_size(str(given), "input_size")
    result = export(model, out, format=fmt, size=size, tolerance=tolerance)
    shape = "x".join(map(str, result.input_shape))
    verdict = "ok" if result.ok else "FAILED"
    click.echo(f"exported {model.card['model']} as {fmt} to {result.path} (input {shape}, logits "
               f"{'x'.join(map(str, result.output_shape))}); max |export - pytorch| = {result.max_abs_diff:.3g} "
               f"(tolerance {tolerance:g}): {verdict}")
    if not result.ok:
        sys.exit(1)
