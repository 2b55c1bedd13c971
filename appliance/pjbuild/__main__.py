import sys

from appliance.pjbuild import main

sys.exit(main())
