"""The agent's image: what an OCI archive holds and which nodes lack it.
"""

import json


def extip_archive_images(index_text):
    """The images an OCI layout's index.json names for containerd: {name: manifest digest}."""
    try:
        index = json.loads(index_text or "{}")
    except ValueError:
        return {}
    images = {}
    for m in index.get("manifests") or []:
        name = (m.get("annotations") or {}).get("io.containerd.image.name")
        if name:
            images[name] = m.get("digest")
    return images


def extip_image_missing(listings, digest):
    """The hosts whose `ctr images ls name==REF` output ({host: stdout}) does not show the
    image with this digest, sorted."""
    return sorted(h for h, out in (listings or {}).items() if not digest or digest not in (out or ""))


class FilterModule:
    """The agent's image."""

    def filters(self):
        return {
            "extip_archive_images": extip_archive_images,
            "extip_image_missing": extip_image_missing,
        }
