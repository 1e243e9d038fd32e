"""``spark-submit`` needs a Python file: this one runs the ``cdi`` command line.

    spark-submit --master spark://host:7077 examples/cdi_submit.py run --config conf/cdi.yaml

The driver's Python must have cdi installed (``pip install -e .`` in the venv
that ``PYSPARK_DRIVER_PYTHON`` names); see ``examples/spark_submit.sh``.
"""

import sys

from jobs.cli import main

sys.exit(main())
