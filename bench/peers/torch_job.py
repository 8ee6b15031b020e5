"""The tutorial's job in PyTorch, as a Keras user would port it (full forward
every epoch, no feature cache; frozen BatchNorm in inference mode as in Keras),
on the PNG files the bench wrote: <class>-<i>.png in --data. Prints one JSON
line: {"seconds", "valAccuracy", "framework"}. A peer for `npm run bench`."""
import json, os, time

from job_args import job_args, job_files

start = time.perf_counter()
import torch
import torchvision
from torchvision.io import read_image, ImageReadMode

a = job_args()
torch.manual_seed(a.seed)
torch.set_num_threads(os.cpu_count() or 1)

files, names, classes = job_files(a.data)
resize = torchvision.transforms.Resize((a.size, a.size), antialias=True)
x = torch.stack([resize(read_image(f, ImageReadMode.RGB)).float() for f in files])
# Keras' "caffe" preprocessing: RGB -> BGR, minus the ImageNet means.
x = x[:, [2, 1, 0]] - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
y = torch.tensor([classes.index(n) for n in names])
order = torch.randperm(len(files))
n_val = int(round(len(files) * a.validation_split))
val, train = order[:n_val], order[n_val:]

trunk = torch.nn.Sequential(*list(torchvision.models.resnet50(weights=None).children())[:-2])
for param in trunk.parameters():
    param.requires_grad = False
# Keras' last 10 layers of ResNet-50 are conv5_block3's three convs, their BNs and ReLUs and the add: torchvision's
# last bottleneck. Fewer unfrozen layers unfreeze from its end (4: conv3 and bn3; 7: conv2 and bn2 too).
last = trunk[-1][-1]
tail = [last.conv3, last.bn3] + ([last.conv2, last.bn2] if a.unfrozen_layers >= 7 else []) + ([last.conv1, last.bn1] if a.unfrozen_layers >= 10 else [])
for module in tail if a.unfrozen_layers > 0 else []:
    for param in module.parameters():
        param.requires_grad = True
features = 2048 * ((a.size + 31) // 32) ** 2
head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(features, 256), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(256, len(classes)))
model = torch.nn.Sequential(trunk, head)
trainable = [param for param in model.parameters() if param.requires_grad]
optimizer = torch.optim.Adam(trainable, lr=1e-4, eps=1e-7)
loss_fn = torch.nn.CrossEntropyLoss()

def set_mode(training):
    model.train(training)
    # Frozen BatchNorm runs in inference mode, as in Keras.
    for module in trunk.modules():
        if isinstance(module, torch.nn.BatchNorm2d) and not module.weight.requires_grad:
            module.eval()

accuracy = float("nan")
for epoch in range(a.epochs):
    set_mode(True)
    shuffled = train[torch.randperm(len(train))]
    for i in range(0, len(shuffled), a.batch_size):
        rows = shuffled[i:i + a.batch_size]
        optimizer.zero_grad()
        loss_fn(model(x[rows]), y[rows]).backward()
        optimizer.step()
    set_mode(False)
    with torch.no_grad():
        correct = sum(int((model(x[val[i:i + a.batch_size]]).argmax(1) == y[val[i:i + a.batch_size]]).sum()) for i in range(0, len(val), a.batch_size))
    accuracy = correct / max(len(val), 1)
print(json.dumps({"seconds": time.perf_counter() - start, "valAccuracy": accuracy, "framework": f"PyTorch {torch.__version__}"}))
