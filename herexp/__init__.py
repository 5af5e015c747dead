"""herexp: HER experiment framework.

Importing the package silences one start-up notice of gymnasium-robotics: it prints (to stderr,
on every import) that the reward functions of the Adroit hand envs changed in v1.2.1. herexp
never uses Adroit, so every herexp command drops exactly that notice; any other notice stays.
The notice is a table entry of ``farama_notifications`` read when gymnasium_robotics is first
imported, so it is removed here, before any herexp module imports gymnasium_robotics.
"""

ADROIT_NOTICE_MARKERS = ("AdroitHand", "reward functions were updated")


def _drop_adroit_notice() -> None:
    try:
        from farama_notifications import notifications
    except Exception:  # noqa: BLE001 - optional dependency of gymnasium; nothing to drop
        return
    per_version = notifications.get("gymnasium_robotics")
    if not isinstance(per_version, dict):
        return
    for version, text in list(per_version.items()):
        if isinstance(text, str) and all(m in text for m in ADROIT_NOTICE_MARKERS):
            del per_version[version]


_drop_adroit_notice()
