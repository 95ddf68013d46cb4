"""yolo_slim's Hydra configs (`yolo_slim.conf` once installed).

This folder is a package only so that the wheel carries it: `setup.py` maps
`yolo_slim.conf` onto `conf/`, and `yolo_slim.config.location.package_conf_dir`
finds it with `importlib.resources`. Hydra reads the `.yaml` files; nothing imports
Python code from here.
"""
