#!/usr/bin/env python3
"""The lab's stand-in for containerd's ctr, for the image commands extip runs:

    ctr -n NAMESPACE images import [--all-platforms] FILE
    ctr -n NAMESPACE images ls [-q] [name==REF]
    ctr -n NAMESPACE images rm REF...

There is no containerd here. This keeps a node's image list in a JSON file
(under $EXTIP_LAB_CONTAINERD_ROOT, one per lab node) and checks what import is
given as containerd does: a tar holding an OCI layout (oci-layout, index.json)
whose manifests, configs and layers are there with the digests the index and
manifests name. An image is named by its io.containerd.image.name annotation.
Every call is appended to calls.jsonl beside the list, with the archive's
SHA-256, so a test can see what the node was given.
"""
import hashlib
import json
import os
import sys
import tarfile


def fail(message):
    sys.stderr.write("ctr: %s\n" % message)
    sys.exit(1)


def state_paths():
    root = os.environ.get("EXTIP_LAB_CONTAINERD_ROOT")
    if not root:
        fail("EXTIP_LAB_CONTAINERD_ROOT is not set (the lab's wrapper sets it)")
    os.makedirs(root, exist_ok=True)
    return os.path.join(root, "images.json"), os.path.join(root, "calls.jsonl")


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def save(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def read_layout(file):
    """The images an OCI layout archive holds, each checked blob by blob."""
    try:
        tar = tarfile.open(file)
    except (OSError, tarfile.TarError) as err:
        fail("failed to import %s: not a tar archive: %s" % (file, err))
    members = {m.name.lstrip("./"): m for m in tar.getmembers() if m.isfile()}

    def blob(digest):
        name = "blobs/sha256/" + digest.split(":", 1)[1]
        if name not in members:
            fail("failed to import %s: %s is missing" % (file, name))
        data = tar.extractfile(members[name]).read()
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            fail("failed to import %s: %s does not match its digest" % (file, name))
        return data

    if "oci-layout" not in members or "index.json" not in members:
        fail("failed to import %s: no oci-layout and index.json: not an OCI image layout" % file)
    index = json.loads(tar.extractfile(members["index.json"]).read())
    images = []
    for m in index.get("manifests", []):
        manifest = json.loads(blob(m["digest"]))
        config = json.loads(blob(manifest["config"]["digest"]))
        size = m["size"] + manifest["config"]["size"]
        for layer in manifest.get("layers", []):
            blob(layer["digest"])
            size += layer["size"]
        name = (m.get("annotations") or {}).get("io.containerd.image.name")
        if not name:
            fail("failed to import %s: a manifest has no io.containerd.image.name annotation" % file)
        images.append({"name": name, "digest": m["digest"], "size": size,
                       "platform": "%s/%s" % (config.get("os", "linux"), config.get("architecture", "amd64"))})
    return images


def main(argv):
    namespace = "default"
    args = list(argv)
    while args and args[0].startswith("-"):
        flag = args.pop(0)
        if flag in ("-n", "--namespace"):
            namespace = args.pop(0)
        elif flag.startswith("--namespace="):
            namespace = flag.split("=", 1)[1]
        elif flag in ("-a", "--address"):
            args.pop(0)
        else:
            fail("flag provided but not defined: %s" % flag)
    images_file, calls_file = state_paths()
    record = {"argv": argv, "namespace": namespace}
    if len(args) < 2 or args[0] not in ("images", "image", "i"):
        fail("the lab's ctr knows only images import, ls and rm, not: %s" % " ".join(args))
    command, rest = args[1], args[2:]
    store = load(images_file)
    ns = store.setdefault(namespace, {})
    if command == "import":
        files = [a for a in rest if not a.startswith("-")]
        if len(files) != 1:
            fail("import takes one archive")
        with open(files[0], "rb") as f:
            record["sha256"] = hashlib.sha256(f.read()).hexdigest()
        for image in read_layout(files[0]):
            ns[image["name"]] = image
            sys.stdout.write("unpacking %s (%s)...done\n" % (image["name"], image["digest"]))
        save(images_file, store)
    elif command in ("ls", "list"):
        quiet = "-q" in rest or "--quiet" in rest
        filters = [a.split("==", 1)[1] for a in rest if a.startswith("name==")]
        names = sorted(n for n in ns if not filters or n in filters)
        if quiet:
            sys.stdout.write("".join(n + "\n" for n in names))
        else:
            sys.stdout.write("REF TYPE DIGEST SIZE PLATFORMS LABELS\n")
            for n in names:
                i = ns[n]
                sys.stdout.write("%s application/vnd.oci.image.index.v1+json %s %.1f MiB %s -\n" % (n, i["digest"], i["size"] / 1048576.0, i["platform"]))
    elif command in ("rm", "remove", "delete", "del"):
        for name in [a for a in rest if not a.startswith("-")]:
            if name not in ns:
                fail('image "%s": not found' % name)
            del ns[name]
            sys.stdout.write(name + "\n")
        save(images_file, store)
    else:
        fail("the lab's ctr knows only images import, ls and rm, not: images %s" % command)
    with open(calls_file, "a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
