"""The standard data sets of learned image compression: where they come from, under which terms,
and the checksums every download is verified against (``kdic datasets``)."""

from __future__ import annotations

from dataclasses import dataclass

from ..registry import Registry


@dataclass(frozen=True)
class RemoteFile:
    """One file to download: its URL, local name, and (where published or pinned) SHA-256 and size."""

    url: str
    name: str
    sha256: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class DatasetSource:
    """A data set: files to fetch (and unpack), the folder of images they give, and its terms.

    ``manual`` replaces the download for sets without a direct public file (it says where to get
    them); ``images`` is the folder, relative to the set's cache folder, that holds the images.
    """

    name: str
    description: str
    licence: str
    files: tuple[RemoteFile, ...] = ()
    images: str = "."
    count: int = 0
    role: str = "evaluation"
    manual: str | None = None


DATASETS: Registry[DatasetSource] = Registry("data set")

KODAK_URL = "https://r0k.us/graphics/kodak/kodak/"
# SHA-256 and sizes of the 24 PNGs as distributed at r0k.us (kodim01 and kodim24 match the hashes
# published elsewhere; the 24 total 15,394,305 bytes).
_KODAK = (
    ("kodim01.png", "a56e27cbf5f843c048b6af1d6e090760e9c92fadba88b7dee0205918a37523bd", 736501),
    ("kodim02.png", "4f4b74a79237e311d72cad958237b5f7088d8bce1c82305ebefe1a70e3022dfd", 617995),
    ("kodim03.png", "e25ca1ff2f0c0cb5fdfd5f9b0a0bb21ac4c3de3c84a67f35b09a85d3306249db", 502888),
    ("kodim04.png", "e3b946107c5d3441c022f678d0c3caf1e224d81b1604ba840a4f88e562de61aa", 637432),
    ("kodim05.png", "10349e963c5c813d327852f82c1795fa4148d69fedffc4c589bee458e3ac3d53", 785610),
    ("kodim06.png", "363510303b715d4cbc384e1ce227e466b613a09e1b71ae985882bf8e7fbd9b18", 618959),
    ("kodim07.png", "b77d3f006f42414bb242222e0482e750c0fb9e5ee8d4bed2f6f11c5605fe54a4", 566322),
    ("kodim08.png", "ba23983c76b4832ee0e8af0592664756841a16779acd69f792e268fb6d13d6e7", 788470),
    ("kodim09.png", "6a4361c2fc194feb4edaa9f9a4a0620fb9943e460ac7fdf037fb0f6dd6607a7d", 582899),
    ("kodim10.png", "9dfb70f5867c29ff9ed6313683f19b3d867849e40fbc0c4c54a4a89df341cf23", 593463),
    ("kodim11.png", "7936814b58b5387fce2e4e2488b4ec830dadd95fa9520f358ddb30990b50f2b6", 621023),
    ("kodim12.png", "d78c37c2f04f23761ed2367dd77e2db584ddd4c3950833fecf89f199a8126980", 531024),
    ("kodim13.png", "bc34a3ce58dea09dce1704c997171602de90cb34d0c8503a988b77f473d39b08", 822712),
    ("kodim14.png", "55a94550ff18f3246c4074fd32b77b0c74447c26b6ad274d564d999c0450ba6e", 692201),
    ("kodim15.png", "7538cbb80cb9103606c48b806eae57d56c885c7f90b9b3be70a41160f9cbb683", 612582),
    ("kodim16.png", "a89c7268ccd4718ba424a99fc4643c572cf692ca6eae887185ceb4e9f11d2e54", 534247),
    ("kodim17.png", "37afcc89fbdcb76d9518e04b2fc011027e2f4cd14b3b2f83cefd721641a47c5b", 602078),
    ("kodim18.png", "1a9258c365988961d87a0598725b609139c303ad48a5aad6c503c3b1a87849aa", 780947),
    ("kodim19.png", "b7450b264b1b0a411390d8931b112c27905a992520fc90569dc4b920aa32bbdc", 671476),
    ("kodim20.png", "3b46c71e3b92a563820ba32936be8330c586c41f938efd94be938386aae4328a", 492462),
    ("kodim21.png", "ac958597c82073f6bb65129c68f72b651db5b9efd82e11547d07350214bc268b", 637051),
    ("kodim22.png", "1cee58eb1f2d9c7ebb254d208a03c783ce6cf2c4d8c2cf45e235dd23b4ce1b29", 701970),
    ("kodim23.png", "e3111a2fd4da24af15d6459ef9eacfe54106b38e27b4a21821b75c3f5d2d5baf", 557596),
    ("kodim24.png", "1071c68372cc5a01435c2c225a5cf7d4bb803846ec08bb6b3d6721b156d7cb96", 706397),
)

DATASETS.register(
    "kodak",
    DatasetSource(
        "kodak",
        "Kodak PhotoCD PCD0992: 24 images, 768x512 (evaluation; the paper's Kodak)",
        "no known restrictions: released by Eastman Kodak 'for unrestricted usage' (per the r0k.us mirror; no licence "
        "text from Kodak)",
        tuple(RemoteFile(KODAK_URL + name, name, sha, size) for name, sha, size in _KODAK),
        count=24,
    ),
)
DATASETS.register(
    "clic2020-professional-valid",
    DatasetSource(
        "clic2020-professional-valid",
        "CLIC 2020 professional validation: 41 images up to 2048 px (evaluation)",
        "images from Unsplash collected by the CLIC organisers; no separate licence statement for the 2020 set",
        (
            RemoteFile(
                "https://data.vision.ee.ethz.ch/cvl/clic/professional_valid_2020.zip",
                "professional_valid_2020.zip",
                "00be38092ade2ab5163b65f7f6523d46c7bca147007f559adbb02c0afc236b7d",
                134834429,
            ),
        ),
        images="valid",
        count=41,
    ),
)
DATASETS.register(
    "tecnick",
    DatasetSource(
        "tecnick",
        "Tecnick TESTIMAGES (classic 100-image set): RGB_OR_1200x1200, 100 images (evaluation)",
        "CC BY-NC-SA 3.0 (README.TXT inside the archive): non-commercial, share-alike",
        (
            RemoteFile(
                "https://sourceforge.net/projects/testimages/files/OLD/OLD_SAMPLING/testimages.zip/download",
                "testimages.zip",
            ),
        ),
        images="testimages/RGB/RGB_OR_1200x1200",
        count=100,
    ),
)
DIV2K_TERMS = "academic research use only; copyright with the original owners (DIV2K website)"
for _split, _what, _count, _role, _sha, _size in (
    (
        "train",
        "DIV2K train HR: 800 2K images (training)",
        800,
        "training",
        "9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335",
        3530603713,
    ),
    (
        "valid",
        "DIV2K valid HR: 100 2K images (evaluation or training)",
        100,
        "evaluation",
        "20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc",
        448993893,
    ),
):
    DATASETS.register(
        f"div2k-{_split}",
        DatasetSource(
            f"div2k-{_split}",
            _what,
            DIV2K_TERMS,
            (
                RemoteFile(
                    f"https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_{_split}_HR.zip",
                    f"DIV2K_{_split}_HR.zip",
                    _sha,
                    _size,
                ),
            ),
            images=f"DIV2K_{_split}_HR",
            count=_count,
            role=_role,
        ),
    )
DATASETS.register(
    "flickr2w",
    DatasetSource(
        "flickr2w",
        "Flickr2W: 20,745 Flickr photos (the paper's training set)",
        "research use only; scraped from flickr.com, not redistributable (liujiaheng/CompressionData)",
        images="flicker_2W_images",
        count=20745,
        role="training",
        manual="Flickr2W has no direct download: fetch the archive from the Google Drive link in "
        "https://github.com/liujiaheng/CompressionData (file 1EK04NO6o3zbcFv5G-vtPDEkPB1dWblEF), unpack it into "
        "{folder} and train with --data {folder}/flicker_2W_images",
    ),
)
