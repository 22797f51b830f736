"""The GEM label sets (platform, domain, task category) and their normalisation.

Models write labels loosely ("Travel & Transportation", "e-commerce"). Labels
are normalised (lower case, ``&`` to ``and``, spaces and hyphens to ``_``) and
matched against the sets below; a label that still matches nothing is mapped
to ``other`` and kept verbatim under ``unknown_labels``, so nothing is lost and
the label sets stay closed.
"""

from __future__ import annotations

import re

__all__ = ["DOMAINS", "PLATFORMS", "TASKS", "normalize_label", "normalize_labels"]

PLATFORMS = frozenset({"operator", "computer", "phone", "machine", "other"})

DOMAINS = frozenset(
    {
        "adult",
        "arts_and_entertainment",
        "autos_and_vehicles",
        "beauty_and_fitness",
        "books_and_literature",
        "business_and_industrial",
        "computers_and_electronics",
        "finance",
        "food_and_drink",
        "games",
        "health",
        "hobbies_and_leisure",
        "home_and_garden",
        "internet_and_telecom",
        "jobs_and_education",
        "law_and_government",
        "news",
        "online_communities",
        "people_and_society",
        "pets_and_animals",
        "real_estate",
        "science",
        "sensitive_subjects",
        "shopping",
        "sports",
        "travel_and_transportation",
    }
)

TASKS = frozenset(
    {
        "databases",
        "multimedia_processing",
        "cloud_platforms",
        "calendar_management",
        "cryptocurrency",
        "location_services",
        "communication",
        "search",
        "file_systems",
        "web_scraping",
        "ecommerce_and_retail",
        "customer_data_platforms",
        "developer_tools",
        "virtualization",
        "version_control",
        "research_and_data",
        "aigc",
        "travel_and_transportation",
        "note_taking",
        "language_translation",
        "rag_systems",
        "security_and_iam",
        "social_media",
        "monitoring",
        "weather_services",
        "customer_support",
        "blockchain",
        "knowledge_and_memory",
        "financial_trading",
        "marketing",
        "enterprise_business_intelligence",
        "transportation_logistics",
        "iphone_android",
        "smart_home",
        "education_elearning",
        "robot_control",
        "website_control",
        "gaming_entertainment",
    }
)


_SEPARATORS = re.compile(r"[\s\-/]+")


def normalize_label(raw: str) -> str:
    """``"Travel & Transportation"`` -> ``"travel_and_transportation"``."""
    text = raw.strip().lower().replace("&", " and ")
    return _SEPARATORS.sub("_", text).strip("_")


def normalize_labels(raw: str, allowed: frozenset[str]) -> tuple[list[str], list[str]]:
    """Split a comma-separated label string into ``(known labels, unknown raw labels)``.

    Unknown labels become ``other`` in the first list (once) and are returned
    verbatim in the second.
    """
    known: list[str] = []
    unknown: list[str] = []
    for part in raw.split(","):
        if not part.strip():
            continue
        label = normalize_label(part)
        if label in allowed:
            if label not in known:
                known.append(label)
        else:
            unknown.append(part.strip())
            if "other" not in known:
                known.append("other")
    return known, unknown
