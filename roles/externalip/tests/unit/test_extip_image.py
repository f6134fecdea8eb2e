import json

from extip_image import extip_archive_images, extip_image_missing


def test_archive_images_reads_the_containerd_names_of_an_oci_index():
    index = {"manifests": [
        {"digest": "sha256:aa", "annotations": {"io.containerd.image.name": "ghcr.io/extip/ipmanager:0.1.0"}},
        {"digest": "sha256:bb", "annotations": {}},
    ]}
    assert extip_archive_images(json.dumps(index)) == {"ghcr.io/extip/ipmanager:0.1.0": "sha256:aa"}
    assert extip_archive_images("not json") == {}


def test_image_missing_lists_the_hosts_without_that_digest():
    listings = {"n2": "REF  sha256:aa", "n1": "", "n3": "REF sha256:old"}
    assert extip_image_missing(listings, "sha256:aa") == ["n1", "n3"]
