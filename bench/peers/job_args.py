"""The job's arguments and files, as both peers read them: the options the bench passes, then the
<class>-<i>.png files in --data with their class names."""
import argparse, glob, os


def job_args():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--unfrozen-layers", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--validation-split", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args()


def job_files(data):
    """The PNG files in name order, each one's class name, and the sorted class names."""
    files = sorted(glob.glob(os.path.join(data, "*.png")))
    names = [os.path.basename(f).split("-")[0] for f in files]
    return files, names, sorted(set(names))
