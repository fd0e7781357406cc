import sys

from nlp_ssl.cli import main

sys.exit(main())
