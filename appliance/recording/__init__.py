"""Call recording, apart from pjsua2: which calls are recorded, for how long files are kept, when the
disk is too full to record, and turning the engine's WAV spans into compressed files.

- `policy.py` (pure): the policy that applies to a call (always, never, on demand) and its announcement.
- `config.py`: the `recording` section of the configuration file and the setting it is stored as.
- `retention.py`: which recordings are older than their policy keeps (pure), and the daily clean-up.
- `disk.py`: the disk guard (free space against a threshold, the free-space reading injectable).
- `encoder.py`: the worker thread that compresses a call's spans into one MP3 and links it to the call.

The engine side (recorders on the conference bridge, the feature code that starts and stops an
on-demand recording) is `appliance/engine/recording.py`; docs/recording.md tells the whole story.
"""
