<?php echo "api";
