"""Write a small image set of three classes, to try the template on classes of your own.

    python examples/three_surfaces.py demo/surfaces             # 150 images in each of blotch/ clean/ line/
    python examples/three_surfaces.py demo/parts --classes ok,defect --count 40

Each image is a 96x96 concrete-like grey texture; `line` images get a dark line across them and
`blotch` images a dark stain, so a model can learn the difference in seconds. With --classes,
the first name gets clean textures, the second lines, the third blotches. The folders are laid
out as data_prep.py reads them: one sub-folder per class.
"""

import argparse
from pathlib import Path

import cv2
import numpy as np

KINDS = ["clean", "line", "blotch"]


def texture(rng, side):
    grain = rng.normal(150, 18, (side, side, 1)) + rng.normal(0, 6, (side, side, 3))
    return cv2.GaussianBlur(grain, (3, 3), 0).clip(0, 255).astype(np.uint8)


def make_image(kind, rng, side=96):
    """An RGB image of one kind: clean, line or blotch."""
    image = texture(rng, side)
    if kind == "line":
        y0, y1 = (int(v) for v in rng.integers(0, side, 2))
        cv2.line(image, (0, y0), (side - 1, y1), (45, 45, 45), 4)
    elif kind == "blotch":
        centre = tuple(int(v) for v in rng.integers(side // 4, 3 * side // 4, 2))
        cv2.circle(image, centre, int(rng.integers(side // 8, side // 5)), (70, 60, 50), -1)
    return image


def write_classes(folder, names=KINDS, count=150, seed=0):
    """folder/NAME/NAME_000.png ... for each class name, in the kinds' order."""
    rng = np.random.default_rng(seed)
    for name, kind in zip(names, KINDS):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            cv2.imwrite(str(folder / name / f"{name}_{i:03d}.png"), cv2.cvtColor(make_image(kind, rng), cv2.COLOR_RGB2BGR))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write the class folders into")
    parser.add_argument("--classes", default=",".join(KINDS), help="two or three class names (default: clean,line,blotch)")
    parser.add_argument("--count", type=int, default=150, help="images per class (default: 150)")
    args = parser.parse_args()
    names = [name.strip() for name in args.classes.split(",") if name.strip()]
    if not 2 <= len(names) <= 3 or args.count < 1:
        parser.error("--classes takes two or three names, --count a positive number")
    write_classes(args.out, names, args.count)
    print(f"wrote {args.count} images in each of {', '.join(f'{args.out / name}/' for name in names)}")


if __name__ == "__main__":
    main()
