"""Static data real ARM serves from its own catalogues: regions, VM sizes, marketplace images, built-in roles."""

from __future__ import annotations

from typing import Any

# name -> display name. Requests may use either; ARM stores the normalised name.
REGIONS: dict[str, str] = {
    "eastus": "East US",
    "eastus2": "East US 2",
    "westus2": "West US 2",
    "westus3": "West US 3",
    "centralus": "Central US",
    "northeurope": "North Europe",
    "westeurope": "West Europe",
    "uksouth": "UK South",
    "francecentral": "France Central",
    "germanywestcentral": "Germany West Central",
    "swedencentral": "Sweden Central",
    "switzerlandnorth": "Switzerland North",
    "polandcentral": "Poland Central",
    "japaneast": "Japan East",
    "australiaeast": "Australia East",
    "brazilsouth": "Brazil South",
    "southeastasia": "Southeast Asia",
}


def normalise_region(value: str) -> str | None:
    """`West Europe` / `westeurope` / `WestEurope` -> `westeurope`; None when ARM would not know the region."""
    name = value.replace(" ", "").lower()
    return name if name in REGIONS else None


# name: (cores, memory MB, max data disks, resource disk MB)
VM_SIZES: dict[str, tuple[int, int, int, int]] = {
    "Standard_B1s": (1, 1024, 2, 4096),
    "Standard_B1ms": (1, 2048, 2, 4096),
    "Standard_B2s": (2, 4096, 4, 8192),
    "Standard_B2ms": (2, 8192, 4, 16384),
    "Standard_B2ats_v2": (2, 1024, 4, 0),
    "Standard_B2als_v2": (2, 4096, 4, 0),
    "Standard_DS1_v2": (1, 3584, 4, 7168),
    "Standard_D2s_v3": (2, 8192, 4, 16384),
    "Standard_D2s_v5": (2, 8192, 4, 0),
    "Standard_D4s_v5": (4, 16384, 8, 0),
    "Standard_D2as_v5": (2, 8192, 4, 0),
    "Standard_F2s_v2": (2, 4096, 4, 16384),
    "Standard_F4s_v2": (4, 8192, 8, 32768),
}


def vm_sizes() -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "numberOfCores": cores,
            "osDiskSizeInMB": 1047552,
            "resourceDiskSizeInMB": disk,
            "memoryInMB": memory,
            "maxDataDiskCount": disks,
        }
        for name, (cores, memory, disks, disk) in VM_SIZES.items()
    ]


# publisher -> offer -> sku -> (hyper-V generation, versions oldest first)
IMAGES: dict[str, dict[str, dict[str, tuple[str, tuple[str, ...]]]]] = {
    "Canonical": {
        "0001-com-ubuntu-server-jammy": {
            "22_04-lts": ("V1", ("22.04.202409120", "22.04.202501140", "22.04.202502060")),
            "22_04-lts-gen2": ("V2", ("22.04.202409120", "22.04.202501140", "22.04.202502060")),
        },
        "ubuntu-24_04-lts": {
            "server": ("V2", ("24.04.202501140", "24.04.202502210")),
        },
    },
    "Debian": {
        "debian-12": {
            "12": ("V1", ("0.20250113.1978", "0.20250210.2019")),
            "12-gen2": ("V2", ("0.20250113.1978", "0.20250210.2019")),
        },
    },
}


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


def lookup(mapping: dict[str, Any], name: str) -> tuple[str, Any] | None:
    """Case-insensitive dictionary lookup returning the canonical key (marketplace names are case-insensitive)."""
    for k, v in mapping.items():
        if k.lower() == name.lower():
            return k, v
    return None


def image_id(
    subscription: str, location: str, publisher: str, offer: str = "", sku: str = "", version: str = ""
) -> str:
    parts = [f"/Subscriptions/{subscription}/Providers/Microsoft.Compute/Locations/{location}/Publishers/{publisher}"]
    if offer:
        parts.append(f"/ArtifactTypes/VMImage/Offers/{offer}")
    if sku:
        parts.append(f"/Skus/{sku}")
    if version:
        parts.append(f"/Versions/{version}")
    return "".join(parts)


def _role(guid: str, name: str, description: str, actions: list[str], data_actions: list[str] | None = None) -> Any:
    return {
        "guid": guid,
        "roleName": name,
        "description": description,
        "permissions": [
            {"actions": actions, "notActions": [], "dataActions": data_actions or [], "notDataActions": []},
        ],
    }


# The real GUIDs of the built-in roles (they are the same in every tenant).
BUILTIN_ROLES: list[dict[str, Any]] = [
    _role("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner", "Grants full access to manage all resources.", ["*"]),
    _role(
        "b24988ac-6180-42a0-ab88-20f7382dd24c",
        "Contributor",
        "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC.",
        ["*"],
    ),
    _role(
        "acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader", "View all resources, but does not allow changes.", ["*/read"]
    ),
    _role(
        "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
        "Storage Blob Data Reader",
        "Allows for read access to Azure Storage blob containers and data",
        [
            "Microsoft.Storage/storageAccounts/blobServices/containers/read",
            "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
        ],
        ["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"],
    ),
    _role(
        "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        "Storage Blob Data Contributor",
        "Allows for read, write and delete access to Azure Storage blob containers and data",
        [
            "Microsoft.Storage/storageAccounts/blobServices/containers/delete",
            "Microsoft.Storage/storageAccounts/blobServices/containers/read",
            "Microsoft.Storage/storageAccounts/blobServices/containers/write",
            "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
        ],
        [
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/move/action",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action",
        ],
    ),
    _role(
        "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
        "Storage Blob Data Owner",
        "Allows for full access to Azure Storage blob containers and data, including assigning POSIX access control.",
        ["Microsoft.Storage/storageAccounts/blobServices/containers/*"],
        ["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*"],
    ),
    _role(
        "17d1049b-9a84-46fb-8f53-869881c3d3ab",
        "Storage Account Contributor",
        "Lets you manage storage accounts, including accessing storage account keys which provide full access "
        "to storage account data.",
        ["Microsoft.Storage/storageAccounts/*", "Microsoft.Resources/subscriptions/resourceGroups/read"],
    ),
    _role(
        "9980e02c-c2be-4d73-94e8-173b1dc7cf3c",
        "Virtual Machine Contributor",
        "Create and manage virtual machines, manage disks, install and run software, reset password of the root user "
        "of the virtual machine using VM extensions, and manage local user accounts using VM extensions.",
        ["Microsoft.Compute/virtualMachines/*", "Microsoft.Compute/disks/*"],
    ),
    _role(
        "4d97b98b-1d4f-4787-a291-c67834d212e7",
        "Network Contributor",
        "Lets you manage networks, but not access to them.",
        ["Microsoft.Network/*", "Microsoft.Resources/subscriptions/resourceGroups/read"],
    ),
]
